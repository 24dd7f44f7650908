"""TLS on the system OpenSSL: STARTTLS and implicit TLS with clients nobody
here wrote (openssl s_client, smtplib, swaks), the STARTTLS injection
defence, certificate reload, and garbage on the wire."""
import re
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from certificates import make_certificates
from conftest import Dialog, wait_for


TLS_POLICY = '''relais.config {
  relay_networks = { "127.0.0.0/8" },
  tls = { cert = "cert.pem", key = "key.pem" },
  listen_tls = { "127.0.0.1:0" },
}
relais.on("data", function(session, msg)
  msg:add_header("X-TLS", tostring(session.tls) .. " " .. tostring(session.tls_version))
end)
'''


def start_tls_relay(policy_relay, folder, policy):
    """A relay with `policy`, its certificate and key beside it, made by a fresh test CA."""
    folder.mkdir()
    make_certificates(folder)
    files = {"cert.pem": (folder / "cert.pem").read_text(), "key.pem": (folder / "key.pem").read_text()}
    relay = policy_relay(policy, files=files)
    log = relay.wait_log("tls=implicit")
    relay.implicit_port = int(re.search(r"address=127\.0\.0\.1:(\d+) tls=implicit", log).group(1))
    relay.ca = folder / "ca.pem"
    return relay


@pytest.fixture
def tls_relay(policy_relay, tmp_path):
    return start_tls_relay(policy_relay, tmp_path / "certs", TLS_POLICY)


def client_context(relay):
    context = ssl.create_default_context(cafile=str(relay.ca))
    return context


def test_ehlo_offers_starttls(tls_relay):
    d = Dialog(tls_relay.port)
    assert b"250-STARTTLS\r\n" in d.ehlo() or b"250 STARTTLS\r\n" in d.ehlo()


def test_openssl_s_client_starttls(tls_relay):
    result = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{tls_relay.port}",
         "-CAfile", str(tls_relay.ca), "-verify_return_error", "-servername", "relay.test", "-quiet", "-ign_eof"],
        input=b"EHLO openssl.test\r\nQUIT\r\n", capture_output=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert b"250-relay.test greets openssl.test" in result.stdout
    assert b"STARTTLS" not in result.stdout.split(b"greets openssl.test")[1]  # not offered twice
    assert b"221 2.0.0 Bye" in result.stdout


def test_openssl_s_client_implicit_tls(tls_relay):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_relay.implicit_port}", "-CAfile", str(tls_relay.ca),
         "-verify_return_error", "-servername", "relay.test", "-brief", "-ign_eof"],
        input=b"QUIT\r\n", capture_output=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert b"220 relay.test ESMTP Relais" in result.stdout
    assert b"Protocol version: TLSv1.3" in result.stderr


def test_smtplib_starttls_and_received_header(tls_relay):
    with smtplib.SMTP("127.0.0.1", tls_relay.port) as client:
        client.ehlo("client.test")
        client.starttls(context=client_context(tls_relay))
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: secret\r\n\r\nencrypted\r\n")
    [message] = tls_relay.maildir_messages(1)
    assert b"\t(using TLSv1.3 with cipher TLS_" in message
    assert b" with ESMTPS id " in message
    assert b"X-TLS: true TLSv1.3\r\n" in message


def test_smtplib_smtp_ssl_on_the_implicit_port(tls_relay):
    with smtplib.SMTP_SSL("127.0.0.1", tls_relay.implicit_port, context=client_context(tls_relay)) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: implicit\r\n\r\nx\r\n")
    [message] = tls_relay.maildir_messages(1)
    assert b"X-TLS: true TLSv1.3\r\n" in message


def test_swaks_tls(tls_relay):
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{tls_relay.port}", "--tls", "--from", "a@example.org",
                             "--to", "b@example.com"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout
    assert "TLS started" in result.stdout
    [message] = tls_relay.maildir_messages(1)
    assert b" with ESMTPS id " in message


def test_commands_pipelined_after_starttls_are_discarded(tls_relay):
    sock = socket.create_connection(("127.0.0.1", tls_relay.port), timeout=10)
    d = Dialog.__new__(Dialog)
    d.sock, d.buffer = sock, b""
    d.replies(1)
    sock.sendall(b"EHLO client.test\r\nSTARTTLS\r\nRSET\r\n")
    assert d.replies(2).endswith(b"220 2.0.0 Ready to start TLS\r\n")
    assert d.buffer == b""
    tls = client_context(tls_relay).wrap_socket(sock, server_hostname="relay.test")
    tls.sendall(b"HELP\r\nMAIL FROM:<a@example.org>\r\n")
    d.sock = tls
    # The first reply is HELP's: the RSET sent in plaintext was never run.
    assert d.replies(2) == (b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
                            b"503 5.5.1 Error: send HELO/EHLO first\r\n")
    assert "discarded input pipelined after STARTTLS" in tls_relay.log
    tls.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"\x16\x03\x01\x00\x05\x01\x00",                 # a truncated ClientHello record
    b"\x16\x03\x01\xff\xff" + b"\x00" * 300,         # a record claiming more than is sent
    bytes(range(256)) * 4,
])
def test_garbage_on_the_tls_port_is_survived(garbage, tls_relay):
    for port, starttls in [(tls_relay.implicit_port, False), (tls_relay.port, True)]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if starttls:
            sock.recv(200)
            sock.sendall(b"EHLO x\r\nSTARTTLS\r\n")
            time.sleep(0.2)
            sock.recv(1000)
        sock.sendall(garbage)
        sock.close()  # abrupt close, possibly mid-handshake
    with smtplib.SMTP_SSL("127.0.0.1", tls_relay.implicit_port, context=client_context(tls_relay)) as client:
        assert client.noop()[0] == 250


def test_old_protocol_versions_are_refused(tls_relay):
    """A client able to speak TLS 1.1 (security level 0) is refused by the server."""
    def connect(version):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_relay.implicit_port}", version,
                               "-cipher", "DEFAULT:@SECLEVEL=0"], input=b"", capture_output=True, timeout=20)
    old = connect("-tls1_1")
    assert old.returncode != 0
    assert b"alert protocol version" in old.stderr
    assert connect("-tls1_2").returncode == 0


def test_certificate_reload(tls_relay, tmp_path):
    before = ssl.get_server_certificate(("127.0.0.1", tls_relay.implicit_port))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_certificates(fresh)
    offset = len(tls_relay.log)
    folder = tls_relay.config.parent
    (folder / "key.tmp").write_text((fresh / "key.pem").read_text())
    (folder / "cert.tmp").write_text((fresh / "cert.pem").read_text())
    (folder / "key.tmp").rename(folder / "key.pem")
    (folder / "cert.tmp").rename(folder / "cert.pem")
    tls_relay.wait_log("policy reloaded", after=offset)
    time.sleep(0.3)
    after = ssl.get_server_certificate(("127.0.0.1", tls_relay.implicit_port))
    assert before != after


def test_bad_certificate_paths_are_clear_errors(tmp_path):
    from conftest import BINARY
    policy = tmp_path / "p.lua"
    policy.write_text('relais.config { tls = { cert = "missing.pem", key = "missing.key" } }')
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "relais.config: tls: cannot load the certificate" in result.stderr and "missing.pem" in result.stderr


def test_garbage_does_not_leak_descriptors(tls_relay):
    def descriptors():
        return len(list(Path(f"/proc/{tls_relay.process.pid}/fd").iterdir()))
    time.sleep(0.3)
    before = descriptors()
    for index in range(200):
        sock = socket.create_connection(("127.0.0.1", tls_relay.implicit_port), timeout=5)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes([index % 256]) * 40)
        sock.close()
    assert wait_for(lambda: descriptors() <= before + 5)


AUTH_OVER_TLS = TLS_POLICY + '''relais.on("auth", function(session, creds)
  return session.tls and creds.username == "carol" and creds.password == "tls-only-secret"
end)
'''


@pytest.fixture
def tls_auth_relay(policy_relay, tmp_path):
    return start_tls_relay(policy_relay, tmp_path / "auth-certs", AUTH_OVER_TLS.replace('"127.0.0.0/8"', '"192.0.2.0/24"'))


def test_smtplib_starttls_then_login(tls_auth_relay):
    with smtplib.SMTP("127.0.0.1", tls_auth_relay.port) as client:
        client.ehlo("client.test")
        client.starttls(context=client_context(tls_auth_relay))
        client.ehlo("client.test")
        client.login("carol", "tls-only-secret")
        client.sendmail("carol@example.org", ["d@example.com"], b"Subject: tls auth\r\n\r\nx\r\n")
    [message] = tls_auth_relay.maildir_messages(1)
    assert b" with ESMTPSA id " in message
    assert "tls-only-secret" not in tls_auth_relay.log


def test_swaks_tls_and_auth(tls_auth_relay):
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{tls_auth_relay.port}", "--tls", "--auth", "PLAIN",
                             "--auth-user", "carol", "--auth-password", "tls-only-secret",
                             "--from", "carol@example.org", "--to", "d@example.com"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout
    assert "235 2.7.0 Authentication successful" in result.stdout
    assert len(tls_auth_relay.maildir_messages(1)) == 1


def test_weak_tls12_cipher_suites_are_refused(tls_relay):
    def connect(cipher):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_relay.implicit_port}", "-tls1_2",
                               "-cipher", cipher], input=b"", capture_output=True, timeout=20)
    assert connect("AES128-SHA").returncode != 0            # RSA key exchange, CBC: refused
    assert connect("ECDHE-RSA-AES128-GCM-SHA256").returncode == 0
