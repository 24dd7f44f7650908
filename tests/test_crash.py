"""Crash safety: SIGKILL the relay while smtp-source and our own clients send;
after a restart every message that got a 250 is in the maildir, exactly once
or more, none missing."""
import re
import smtplib
import subprocess
import threading
import time


def send_numbered(port: int, first: int, acked: set, stop: threading.Event, recipients=("b@example.com",)):
    """Sends messages numbered first, first+1, ... until the server goes away;
    records the numbers the server acknowledged with 250."""
    number = first
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            while not stop.is_set():
                body = (f"Subject: crash test {number}\r\nX-Seq: {number}\r\n\r\n" + ("x" * 76 + "\r\n") * 26).encode()
                client.sendmail("a@example.org", list(recipients), body)
                acked.add(number)
                number += 1
    except (smtplib.SMTPException, OSError):
        pass


def delivered_numbers(relay) -> list[int]:
    numbers = []
    for message in relay.maildir_messages():
        match = re.search(rb"\r\nX-Seq: (\d+)\r\n", message)
        if match:
            numbers.append(int(match.group(1)))
    return numbers


def kill_while_sending(relay, cycle: int, acked: set, messages: int, recipients=("b@example.com",), seconds=1.5):
    """Runs smtp-source (unless `messages` is 0) and four numbered clients
    against the relay, then SIGKILLs it `seconds` in; numbers the relay
    acknowledged go into `acked`."""
    source = subprocess.Popen(
        ["smtp-source", "-s", "10", "-m", str(messages), "-l", "2048", "-d", "-f", "src@example.org",
         "-t", "sink@example.com", f"127.0.0.1:{relay.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if messages else None
    stop = threading.Event()
    threads = [threading.Thread(target=send_numbered, args=(relay.port, cycle * 1_000_000 + i * 100_000, acked, stop),
                                kwargs={"recipients": recipients}) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    relay.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    if source:
        source.kill()
        source.wait()


def test_sigkill_loses_no_acknowledged_message(start_relay, tmp_path):
    data = tmp_path / "crash"
    acked: set[int] = set()
    for cycle in range(3):
        relay = start_relay(data_dir=data)
        kill_while_sending(relay, cycle, acked, 1_000_000)
    final = start_relay(data_dir=data)
    assert final.wait_spool_empty(timeout=30) == []
    delivered = delivered_numbers(final)
    assert len(acked) > 100, "the test did not send enough to mean anything"
    print(f"acknowledged {len(acked)}, delivered {len(delivered)} numbered messages, "
          f"{len(delivered) - len(set(delivered))} delivered twice")
    missing = acked - set(delivered)
    assert not missing, f"{len(missing)} acknowledged messages lost"
    assert len(final.maildir_messages()) > len(acked)  # smtp-source's messages arrived too


def test_sigkill_while_relaying_to_smtp_sink(policy_relay, tmp_path):
    """Five SIGKILLs while smtp-source and numbered clients push mail through
    the relay to smtp-sink: after the last restart every acknowledged
    message reached the sink."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sink_port = s.getsockname()[1]
    dumps = tmp_path / "sink"
    dumps.mkdir()
    sink = subprocess.Popen(["smtp-sink", "-u", "root", "-m", "500", "-d", str(dumps / "m"),
                             f"127.0.0.1:{sink_port}", "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    policy = f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 1, retry_max = 2 }} }}
local sink = relais.smarthost {{ name = "sink", host = "127.0.0.1", port = {sink_port}, tls = "none", max_connections = 20 }}
relais.on("route", function(msg, rcpt) return sink end)
'''
    try:
        relay = policy_relay(policy)
        acked: set[int] = set()
        for cycle in range(5):
            if cycle:
                relay.start()
            kill_while_sending(relay, cycle, acked, 20000)
        relay.start()
        assert relay.wait_spool_empty(timeout=120) == []
        delivered = []
        for dump in dumps.iterdir():
            match = re.search(rb"\r?\nX-Seq: (\d+)\r?\n", dump.read_bytes())
            if match:
                delivered.append(int(match.group(1)))
        assert len(acked) > 100
        missing = acked - set(delivered)
        print(f"acknowledged {len(acked)} numbered messages over 5 kills; {len(delivered)} reached the sink, "
              f"{len(delivered) - len(set(delivered))} twice")
        assert not missing, f"{len(missing)} acknowledged messages never reached the sink"
    finally:
        sink.kill()


def test_sigkill_while_delivery_states_are_saved(policy_relay, tmp_path):
    """Each message has one recipient for an upstream that is up and one
    for an upstream that answers 451, retried every 50 ms, so delivery
    states are appended (and files written anew) all the time. Three
    SIGKILLs in that; then the second upstream accepts: every acknowledged
    message reached both, and no acknowledged message's file was set aside
    as corrupt."""
    from upstream import Upstream
    up = Upstream().start()
    busy = Upstream(mail_reply="451 4.3.0 Try later").start()
    policy = f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 0.05, retry_max = 0.05 }} }}
local up = relais.smarthost {{ name = "up", host = "127.0.0.1", port = {up.port}, tls = "none" }}
local busy = relais.smarthost {{ name = "busy", host = "127.0.0.1", port = {busy.port}, tls = "none" }}
relais.on("route", function(msg, rcpt)
  if msg.is_bounce then return nil end
  if rcpt.domain == "busy.example" then return busy end
  return up
end)
'''
    try:
        relay = policy_relay(policy)
        acked: set[int] = set()
        for cycle in range(3):
            if cycle:
                relay.start()
            kill_while_sending(relay, cycle, acked, 0, recipients=["b@up.example", "c@busy.example"], seconds=2)
        assert "state" in relay.spool_files()[0].read_text(errors="replace")  # records were being appended
        busy.recorder.mail_reply = None
        relay.start()
        assert relay.wait_spool_empty(timeout=120) == []
        assert len(acked) > 100, "the test did not send enough to mean anything"
        for upstream in (up, busy):
            numbers = {int(re.search(rb"\r\nX-Seq: (\d+)\r\n", m[2]).group(1)) for m in upstream.messages}
            missing = acked - numbers
            assert not missing, f"{len(missing)} acknowledged messages never reached {upstream.port}"
        # Only a write the kill cut short before its 250 may be set aside.
        queued = set(re.findall(r"id=(\w+) recipients=\d+ size=\d+ \[Relais\] queued", relay.log))
        assert queued and not {p.name for p in (relay.data_dir / "spool" / "corrupt").iterdir()} & queued
    finally:
        up.stop()
        busy.stop()
