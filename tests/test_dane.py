"""DANE (RFC 7672) for direct delivery: unbound serves a DNSSEC-signed zone
(ldns-signzone) and an unsigned one; a second unbound validates and is the
relay's resolver; aiosmtpd with STARTTLS (and nothing before it) is every
MX host. A delivery therefore proves TLS; which ones fail proves DANE."""
import hashlib
import smtplib
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller

from certificates import make_certificates
from conftest import BINARY, wait_for
from services import ValidatingResolver
from upstream import Recorder, free_port


def der(*args):
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The MX host and the two zones. Mail domains under secure.example:
    good (DANE-EE 3 1 1), ta (DANE-TA 2 0 1 on the CA, which the server
    sends in its chain), wrong (a validly signed TLSA that matches nothing),
    tampered (TLSA changed after signing to the right key), pkix (only a
    PKIX usage, unusable for SMTP), notlsa (no TLSA at all); and
    insecure.example, unsigned, whose wrong TLSA must be ignored."""
    folder = tmp_path_factory.mktemp("dane")
    make_certificates(folder, name="mx-ta.secure.example")
    (folder / "chain.pem").write_text((folder / "cert.pem").read_text() + (folder / "ca.pem").read_text())
    spki = der("pkey", "-in", str(folder / "key.pem"), "-pubout", "-outform", "DER")
    leaf_key = hashlib.sha256(spki).hexdigest()
    ca_cert = hashlib.sha256(der("x509", "-in", str(folder / "ca.pem"), "-outform", "DER")).hexdigest()
    wrong = hashlib.sha256(b"some other key").hexdigest()

    recorder = Recorder()
    port = free_port()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "chain.pem", folder / "key.pem")
    controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False,
                            tls_context=context, require_starttls=True)
    controller.start()

    def domain(name, *tlsa):
        return [f"{name} IN MX 10 mx-{name}", f"mx-{name} IN A 127.0.0.1",
                *[f"_{port}._tcp.mx-{name} IN TLSA {record}" for record in tlsa]]
    records = [*domain("good", f"3 1 1 {leaf_key}"), *domain("ta", f"2 0 1 {ca_cert}"),
               *domain("wrong", f"3 1 1 {wrong}"), *domain("tampered", f"3 1 1 {wrong[:-4]}beef"),
               *domain("pkix", f"1 1 1 {wrong}"), *domain("notlsa")]
    resolver = ValidatingResolver(
        folder / "dns", "secure.example", records,
        insecure_zone="insecure.example",
        insecure_records=["@ IN MX 10 mx", "mx IN A 127.0.0.1", f"_{port}._tcp.mx IN TLSA 3 1 1 {wrong}"],
        tamper={f"3 1 1 {wrong[:-4]}beef": f"3 1 1 {leaf_key}"})
    yield resolver, recorder, port
    resolver.stop()
    controller.stop()


POLICY = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, dns = {{ servers = {{ "{dns}" }}, timeout = 2 }},
  queue = {{ retry_min = 60 }} }}
local direct = relais.mx {{ port = {port}, dane = true }}
relais.on("route", function(msg, rcpt) if msg.is_bounce then return nil end return direct end)
'''


@pytest.fixture
def relay(policy_relay, world):
    resolver, _, port = world
    return policy_relay(POLICY.format(dns=resolver.address, port=port))


def send(relay, recipient):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", [recipient], f"Subject: dane {recipient}\r\n\r\nhello\r\n".encode())


def delivered(recorder, recipient):
    return any(recipient in message[1] for message in recorder.messages)


@pytest.mark.parametrize("recipient", ["b@good.secure.example", "b@ta.secure.example", "b@pkix.secure.example",
                                       "b@notlsa.secure.example", "b@insecure.example"])
def test_delivered_when_dane_authenticates_or_does_not_apply(relay, world, recipient):
    """DANE-EE and DANE-TA records that match; a TLSA set with only a PKIX
    usage (TLS required, not authenticated); no TLSA (secure denial); a
    wrong TLSA in an unsigned zone (not DNSSEC: ignored)."""
    _, recorder, _ = world
    send(relay, recipient)
    assert wait_for(lambda: delivered(recorder, recipient), timeout=20), relay.log


def test_a_tlsa_that_matches_nothing_defers(relay, world):
    _, recorder, _ = world
    send(relay, "b@wrong.secure.example")
    relay.wait_log("certificate verification failed", timeout=20)
    relay.wait_log("deferred", timeout=20)
    assert not delivered(recorder, "b@wrong.secure.example")
    assert wait_for(lambda: relay.spool_files() != []), "the message stays queued"


def test_a_tampered_tlsa_defers(relay, world):
    """The TLSA record was changed after signing to the server's real key:
    a relay that did not insist on validation would deliver."""
    _, recorder, _ = world
    send(relay, "b@tampered.secure.example")
    relay.wait_log("TLSA lookup failed (SERVFAIL)", timeout=20)
    relay.wait_log("deferred", timeout=20)
    assert not delivered(recorder, "b@tampered.secure.example")
    assert wait_for(lambda: relay.spool_files() != [])


def test_simulate_shows_each_hosts_dane_decision(tmp_path, world):
    resolver, _, port = world
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY.format(dns=resolver.address, port=port))
    result = subprocess.run([str(BINARY), "simulate", str(policy), "--from", "a@example.org", "--to", "b@good.secure.example",
                             "--to", "c@tampered.secure.example", "--to", "d@insecure.example", "-"],
                            input="Subject: x\n\nhi\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("dane")]
    assert any("mx-good.secure.example: STARTTLS authenticated by DANE (TLSA 3 1 1 " in line for line in lines), result.stdout
    assert any("mx-tampered.secure.example: not used: " in line and "SERVFAIL" in line for line in lines), result.stdout
    assert any("insecure.example" in line and "not DNSSEC-validated" in line for line in lines), result.stdout


def test_dane_needs_tls(tmp_path):
    policy = tmp_path / "policy.lua"
    policy.write_text('relais.on("route", function() return relais.mx { dane = true, tls = "none" } end)\n'
                      'local t = relais.mx { dane = true, tls = "none" }\n')
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "policy.lua:2:" in result.stderr + result.stdout and "dane = true needs TLS" in result.stderr + result.stdout
