"""Real servers the hooks call, each on a free loopback port and started by
the tests: dnsmasq (DNS), unbound (a DNSSEC-signed zone behind a validating
resolver), redis-server, and a Python HTTP server whose answers can be made
slow."""
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port(kind=socket.SOCK_STREAM) -> int:
    """A port free for TCP and UDP alike (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_port(port: int, timeout: float = 10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class DNSServer:
    """dnsmasq answering only what it is told: `records` is a list of
    dnsmasq options (`address=/a.example/192.0.2.1`, `txt-record=...`,
    `mx-host=...`, `ptr-record=...`); names under `nxdomain` zones that have
    no record answer NXDOMAIN."""

    def __init__(self, folder: Path, records: list[str], nxdomain: list[str] = ()):
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        args = [binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                "--listen-address=127.0.0.1", f"--port={self.port}", "--local-ttl=300", "--log-facility=-", "--user=root",
                f"--pid-file={folder / 'dnsmasq.pid'}", *[f"--{record}" for record in records], *[f"--address=/{zone}/" for zone in nxdomain]]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait()


class ValidatingResolver:
    """DNSSEC as the relay meets it: one unbound serves `zone`, signed with
    ldns-signzone (ECDSA P-256, NSEC), and `insecure_zone` unsigned; a
    second unbound validates, trusting only the signed zone's DS record,
    and is the relay's resolver. `records` and `insecure_records` are
    zone-file lines relative to their zone. `tamper` maps text of the
    signed zone to what replaces it after signing, so the records changed
    no longer match their signatures (the validator then answers SERVFAIL)."""

    def __init__(self, folder: Path, zone: str, records: list[str], insecure_zone: str = "insecure.example",
                 insecure_records: list[str] = (), tamper: dict[str, str] = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.processes = []

        def zone_file(name, lines):
            head = [f"$ORIGIN {name}.", "$TTL 300",
                    f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300", "@ IN NS ns", "ns IN A 127.0.0.1"]
            path = folder / f"{name}.zone"
            path.write_text("\n".join([*head, *lines]) + "\n")
            return path
        signed_source = zone_file(zone, records)
        key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone], cwd=folder, check=True,
                             capture_output=True, text=True).stdout.strip()
        subprocess.run(["ldns-signzone", str(signed_source), key], cwd=folder, check=True, capture_output=True)
        signed = Path(str(signed_source) + ".signed")
        text = signed.read_text()
        for old, new in (tamper or {}).items():
            assert old in text, f"{old!r} is not in the signed zone"
            text = text.replace(old, new)
        signed.write_text(text)
        insecure = zone_file(insecure_zone, insecure_records)

        self.authority_port = free_port()
        self.port = free_port()
        common = ['username: ""', 'chroot: ""', f'directory: "{folder}"', 'pidfile: ""', "use-syslog: no",
                  "interface: 127.0.0.1", "num-threads: 1", "so-reuseport: no", "access-control: 127.0.0.0/8 allow"]
        self._start("authority", [*common, f"port: {self.authority_port}", 'module-config: "iterator"'],
                    [f'auth-zone:\n  name: "{zone}."\n  zonefile: "{signed}"\n  for-downstream: yes\n  for-upstream: no',
                     f'auth-zone:\n  name: "{insecure_zone}."\n  zonefile: "{insecure}"\n  for-downstream: yes\n  for-upstream: no'])
        self._start("validator", [*common, f"port: {self.port}", 'module-config: "validator iterator"',
                                  "do-not-query-localhost: no", f'trust-anchor-file: "{folder / (key + ".ds")}"',
                                  "val-log-level: 2"],
                    [f'stub-zone:\n  name: "{name}."\n  stub-addr: 127.0.0.1@{self.authority_port}'
                     for name in (zone, insecure_zone)])

    def _start(self, name, server, sections):
        config = self.folder / f"{name}.conf"
        config.write_text("server:\n" + "".join(f"  {line}\n" for line in server)
                          + f'  logfile: "{self.folder / (name + ".log")}"\n' + "\n".join(sections) + "\n")
        binary = shutil.which("unbound") or "/usr/sbin/unbound"
        self.processes.append(subprocess.Popen([binary, "-d", "-c", str(config)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.authority_port if name == "authority" else self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        for process in self.processes:
            process.kill()
            process.wait()


class RedisServer:
    """redis-server without persistence."""

    def __init__(self, folder: Path, password: str | None = None):
        self.port = free_port()
        self.folder = folder
        self.password = password
        self.process = None
        self.start()

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.folder)]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.process.kill()
        self.process.wait()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self, *words: str) -> bytes:
        """One command through redis-cli, nobody here wrote it."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        return subprocess.run(["redis-cli", "-p", str(self.port), *auth, *words], capture_output=True, check=True).stdout


class HTTPServer:
    """Answers `GET /slow?s=SECONDS` after that long, `/json` with the
    request as JSON (method, path, headers, body), `/big` with 2 MiB,
    `/redirect` with a 302 to /json; counts the requests."""

    def __init__(self, tls_folder: Path | None = None, files: dict | None = None):
        self.requests = 0
        # path -> body answered with 200 (text/plain)
        self.files = files or {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.answer()

            def do_POST(self):
                self.answer()

            def answer(self):
                with server.lock:
                    server.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                if path in server.files:
                    return self.reply(200, server.files[path].encode(), {"Content-Type": "text/plain"})
                if path == "/slow":
                    time.sleep(float(query.split("=")[1]) if "=" in query else 2)
                    return self.reply(200, b"slow ok")
                if path == "/big":
                    return self.reply(200, b"x" * (2 * 1024 * 1024))
                if path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                echo = {"method": self.command, "path": self.path, "body": body.decode(),
                        "headers": {k.lower(): v for k, v in self.headers.items()}}
                self.reply(200, json.dumps(echo).encode(), {"X-Test": "yes", "Content-Type": "application/json"})

            def reply(self, status, body, headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.scheme = "http"
        if tls_folder:
            import ssl
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls_folder / "cert.pem", tls_folder / "key.pem")
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
