"""SMTP hardening, in byte-exact dialogues: no message text or commands
pipelined behind DATA/EHLO/AUTH by untrusted clients, deadlines that
trickling bytes do not extend, the TLS key-exchange groups offered, header
syntax, and what `relais check` says about TLS."""
import re
import subprocess
import time

import pytest

from certificates import make_certificates
from conftest import BINARY, Dialog
from test_tls import start_tls_relay

OUTSIDER = '''relais.config { relay_networks = { "192.0.2.0/24" }, greeting_delay = 0 }
relais.on("rcpt", function(session, rcpt) return relais.accept() end)
'''
TRUSTED = 'relais.config { relay_networks = { "127.0.0.0/8" } }\n'
TRANSACTION = (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
               b"Subject: early\r\n\r\ntext before the 354\r\n.\r\n")


def test_outsider_text_before_354_is_refused_and_nothing_queued(policy_relay):
    relay = policy_relay(OUTSIDER)
    d = Dialog(relay.port)
    d.ehlo()
    d.send(TRANSACTION)
    assert d.replies(3) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                            b"554 5.5.0 Error: command pipelining before DATA reply\r\n")
    assert d.closed()
    assert relay.maildir_messages(0, timeout=0.5) == []
    assert relay.spool_files() == []


def test_outsider_may_not_pipeline_behind_ehlo(policy_relay):
    relay = policy_relay(OUTSIDER)
    d = Dialog(relay.port)
    d.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n")
    assert d.replies(1) == b"554 5.5.0 Error: command pipelining before EHLO reply\r\n"
    assert d.closed()


def test_outsider_waiting_for_the_354_is_served(policy_relay):
    relay = policy_relay(OUTSIDER)
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    assert d.replies(3) == b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    d.send(b"Subject: patient\r\n\r\nbody\r\n.\r\n")
    assert d.replies(1).startswith(b"250 2.0.0 Ok: queued as ")


def test_trusted_client_still_pipelines_everything(policy_relay):
    relay = policy_relay(TRUSTED)
    d = Dialog(relay.port)
    d.send(b"EHLO client.example\r\n" + TRANSACTION)
    replies = d.replies(5)
    assert replies.count(b"\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as ") == 1
    assert len(relay.maildir_messages(1)) == 1


def trickle(d, data, interval):
    for byte in data:
        d.send(bytes([byte]))
        time.sleep(interval)


def test_a_trickled_command_line_is_cut_off(policy_relay):
    relay = policy_relay(TRUSTED, "--command-timeout", "2")
    d = Dialog(relay.port)
    start = time.time()
    with pytest.raises(OSError):
        trickle(d, b"EHLO a-very-slow-client.example\r\n", 0.25)
    assert d.replies(1) == b"421 4.4.2 Error: timeout exceeded; closing connection\r\n"
    assert 1.8 < time.time() - start < 4


def test_a_trickled_message_is_cut_off_by_max_data_time(policy_relay):
    relay = policy_relay(TRUSTED + "relais.config { max_data_time = 2 }\n")
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    assert d.replies(3).endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    start = time.time()
    with pytest.raises(OSError):
        trickle(d, b"Subject: slow\r\n\r\n" + b"x" * 200, 0.2)   # never idle for long, always too slow
    assert d.replies(1) == b"421 4.4.2 Error: timeout exceeded; closing connection\r\n"
    assert 1.8 < time.time() - start < 4
    assert relay.maildir_messages(0, timeout=0.5) == []


def test_the_session_has_a_limit(policy_relay):
    relay = policy_relay(TRUSTED + "relais.config { max_session_time = 2 }\n")
    d = Dialog(relay.port)
    for _ in range(3):
        d.send(b"NOOP\r\n")
        assert d.replies(1) == b"250 2.0.0 Ok\r\n"
        time.sleep(0.5)
    time.sleep(1)
    assert d.replies(1) == b"421 4.4.2 Error: timeout exceeded; closing connection\r\n"


def s_client(port, ca, group):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca), "-groups", group,
                           "-brief"], input=b"QUIT\r\n", capture_output=True, timeout=20)


TLS_GROUPS_POLICY = '''relais.config { relay_networks = { "127.0.0.0/8" }, tls = { cert = "cert.pem", key = "key.pem"GROUPS },
  listen_tls = { "127.0.0.1:0" } }
'''


@pytest.mark.parametrize("group,accepted", [("X25519", True), ("P-256", True), ("P-384", True),
                                            ("X448", False), ("P-521", False)])
def test_tls_offers_the_mozilla_intermediate_groups(policy_relay, tmp_path, group, accepted):
    relay = start_tls_relay(policy_relay, tmp_path / "certs", TLS_GROUPS_POLICY.replace("GROUPS", ""))
    result = s_client(relay.implicit_port, relay.ca, group)
    established = result.returncode == 0 and b"CONNECTION ESTABLISHED" in result.stderr
    assert established == accepted, result.stderr.decode()


def test_tls_groups_are_configurable(policy_relay, tmp_path):
    relay = start_tls_relay(policy_relay, tmp_path / "certs",
                            TLS_GROUPS_POLICY.replace("GROUPS", ', groups = { "P-384" }'))
    assert s_client(relay.implicit_port, relay.ca, "P-384").returncode == 0
    assert s_client(relay.implicit_port, relay.ca, "X25519").returncode != 0


MALFORMED = [
    (b"Subject: fine\r\nthis is not a header\r\n\r\nbody\r\n", 2),
    (b" continuation first\r\nSubject: x\r\n\r\nbody\r\n", 1),
    (b"Subject: fine\r\n: no name\r\n\r\nbody\r\n", 2),
    (b"Bad Name: space in the name\r\n\r\nbody\r\n", 1),
]


@pytest.mark.parametrize("text,line", MALFORMED)
def test_malformed_header_lines_are_refused(policy_relay, text, line):
    relay = policy_relay(TRUSTED)
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" + text + b".\r\n")
    assert d.replies(4)[-80:].endswith(
        f"550 5.6.0 Error: header line {line} is neither a field nor a continuation\r\n".encode())
    assert relay.maildir_messages(0, timeout=0.5) == []


def test_folded_headers_pass_and_accept_mode_takes_anything(policy_relay):
    relay = policy_relay(TRUSTED)
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
           b"Subject: folded\r\n\tsecond line\r\nX-Empty:\r\n\r\nbody\r\n.\r\n")
    assert d.replies(4).split(b"\r\n")[-2].startswith(b"250 2.0.0 Ok: queued as ")
    lenient = policy_relay(TRUSTED + 'relais.config { header_syntax = "accept" }\n')
    d = Dialog(lenient.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" + MALFORMED[0][0] + b".\r\n")
    assert d.replies(4).split(b"\r\n")[-2].startswith(b"250 2.0.0 Ok: queued as ")


def test_check_shows_implicit_tls_listeners_and_the_certificate(tmp_path):
    make_certificates(tmp_path)
    policy = tmp_path / "policy.lua"
    policy.write_text('relais.config { tls = { cert = "cert.pem", key = "key.pem" }, listen_tls = { "127.0.0.1:4650" } }')
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "listen_tls     127.0.0.1:4650" in result.stdout
    tls = [line for line in result.stdout.splitlines() if line.startswith("tls ")][0]
    assert re.search(r"CN=\S+.*, expires \w{3} +\d+ \d\d:\d\d:\d\d \d{4} GMT; groups X25519, P-256, P-384", tls), tls
