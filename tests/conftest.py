"""Fixtures that start the real relais binary on an ephemeral loopback port."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("RELAIS_BIN", ROOT / ".build" / "debug" / "relais"))


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Polls `condition` every `interval` seconds until it holds or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


class Relay:
    """One running `relais run` process with its own data folder."""

    def __init__(self, data_dir: Path, args: list[str], config: Path | None = None):
        self.data_dir = data_dir
        self.args = args
        self.config = config
        self.log_path = data_dir / "relais.log"
        self.process = None
        self.port = None

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        offset = self.log_path.stat().st_size
        config = [str(self.config)] if self.config else []
        listen = [] if "--no-default-listen" in self.args else ["--listen", "127.0.0.1:0"]
        args = [a for a in self.args if a != "--no-default-listen"]
        self.process = subprocess.Popen(
            [str(BINARY), "run", *config, *listen, "--data-dir", str(self.data_dir),
             "--hostname", "relay.test", *args],
            stdout=log, stderr=log, cwd=self.data_dir.parent,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            match = re.search(r"address=127\.0\.0\.1:(\d+)", text)
            if match:
                self.port = int(match.group(1))
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"relais exited: {text}")
            time.sleep(0.02)
        raise RuntimeError("relais did not start listening")

    def wait_log(self, text: str, timeout: float = 10.0, after: int = 0) -> str:
        """Waits until `text` appears in the log (past offset `after`); returns the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.log
            if text in log[after:]:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged; log:\n{self.log}")

    def maildir(self, name: str, wait_for: int = 0, timeout: float = 10.0) -> list[bytes]:
        """The files in the new/ folder of maildir `name` under the data folder,
        waiting until there are `wait_for`."""
        new = self.data_dir / name / "new"
        deadline = time.time() + timeout
        while True:
            files = sorted(new.iterdir()) if new.exists() else []
            if len(files) >= wait_for or time.time() > deadline:
                return [f.read_bytes() for f in files]
            time.sleep(0.05)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)

    def kill(self):
        self.stop(signal.SIGKILL)

    def maildir_messages(self, wait_for: int = 0, timeout: float = 10.0) -> list[bytes]:
        """The files in the default maildir's new/ folder, waiting until there are `wait_for`."""
        return self.maildir("mail", wait_for, timeout)

    def wait_spool_empty(self, timeout: float = 10.0) -> list[Path]:
        """Waits until delivery has removed every queued file; returns what is left."""
        deadline = time.time() + timeout
        while self.spool_files() and time.time() < deadline:
            time.sleep(0.05)
        return self.spool_files()

    def spool_files(self) -> list[Path]:
        queue = self.data_dir / "spool" / "queue"
        return sorted(p for p in queue.iterdir() if not p.name.startswith(".")) if queue.exists() else []


@pytest.fixture
def start_relay(tmp_path):
    relays = []

    def start(*args, data_dir=None, config=None):
        relay = Relay(data_dir or tmp_path / f"relay{len(relays)}", list(args), config)
        relays.append(relay)
        return relay.start()

    yield start
    for relay in relays:
        relay.stop(signal.SIGKILL)


@pytest.fixture
def policy_relay(start_relay, tmp_path):
    """Starts a relay with the given Lua policy text (written to policy.lua)."""
    def start(text: str, *args, files: dict | None = None):
        folder = tmp_path / f"policy{len(list(tmp_path.glob('policy*')))}"
        folder.mkdir()
        for name, content in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
        config = folder / "policy.lua"
        config.write_text(text)
        return start_relay(*args, config=config, data_dir=folder / "data")
    return start


@pytest.fixture
def relay(start_relay):
    return start_relay()


class Dialog:
    """A raw SMTP conversation for byte-exact checks."""

    def __init__(self, port: int, read_greeting: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        if read_greeting:
            self.greeting = self.replies(1)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def replies(self, count: int) -> bytes:
        """Reads exactly `count` complete replies and returns their bytes."""
        out = b""
        for _ in range(count):
            while True:
                line = self._line()
                out += line
                if len(line) >= 4 and line[3:4] == b" ":
                    break
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line + b"\r\n"

    def closed(self, timeout=5.0) -> bool:
        """True when the server closes the connection with nothing more to say."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def ehlo(self):
        self.send(b"EHLO client.test\r\n")
        return self.replies(1)

    def start_data(self):
        """Sends a one-recipient envelope and DATA; returns after the 354."""
        self.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        replies = self.replies(3)
        assert replies.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n"), replies

    def close(self):
        self.sock.close()


@pytest.fixture
def dialog(relay):
    dialogs = []

    def open_dialog(port=None, read_greeting=True):
        d = Dialog(port or relay.port, read_greeting)
        dialogs.append(d)
        return d

    yield open_dialog
    for d in dialogs:
        d.close()
