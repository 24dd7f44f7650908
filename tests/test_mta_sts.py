"""MTA-STS (RFC 8461) for direct delivery: dnsmasq serves the MX, A and
_mta-sts TXT records, a local HTTPS server with a test CA the policy, and
aiosmtpd with STARTTLS is the MX host."""
import smtplib
import ssl

import pytest
from aiosmtpd.controller import Controller

from certificates import make_certificates
from conftest import wait_for
from services import DNSServer, HTTPServer
from upstream import Recorder, free_port


@pytest.fixture
def tls(tmp_path):
    folder = tmp_path / "tls"
    folder.mkdir()
    ca = make_certificates(folder, name="mx1.secure.test", extra_names=["mta-sts.secure.test", "mta-sts.testing.test"])
    return folder, ca


def mx_server(folder, starttls=True):
    recorder = Recorder()
    port = free_port()
    kwargs = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False, **kwargs)
    controller.start()
    return controller, recorder, port


def policy_text(mode, mx="mx1.secure.test"):
    return f"version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n"


def dns_for(tmp_path, name="dns"):
    return DNSServer(tmp_path / name, [
        "mx-host=secure.test,mx1.secure.test,10", "address=/mx1.secure.test/127.0.0.1",
        "address=/mta-sts.secure.test/127.0.0.1", "txt-record=_mta-sts.secure.test,v=STSv1; id=20261201;",
        "mx-host=testing.test,mx1.secure.test,10",
        "address=/mta-sts.testing.test/127.0.0.1", "txt-record=_mta-sts.testing.test,v=STSv1; id=1;",
    ])


POLICY = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, dns = {{ servers = {{ "{dns}" }}, timeout = 1 }},
  queue = {{ retry_min = 1, retry_max = 2 }} }}
local direct = relais.mx {{ port = {port}, mta_sts = true, mta_sts_port = {https}, ca_file = "{ca}" }}
relais.on("route", function(msg, rcpt) if msg.is_bounce then return nil end return direct end)
'''


def send(relay, recipient):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", [recipient], b"Subject: sts\r\n\r\nhello\r\n")


@pytest.fixture
def start(policy_relay, tmp_path, tls):
    """Starts dnsmasq, the policy's HTTPS server (serving `files`), the MX
    host and a relay; everything is stopped after the test."""
    stops = []

    def run(files, starttls=True):
        folder, ca = tls
        dns = dns_for(tmp_path)
        https = HTTPServer(tls_folder=folder, files=files)
        controller, recorder, port = mx_server(folder, starttls=starttls)
        stops.extend([dns.stop, https.stop, controller.stop])
        relay = policy_relay(POLICY.format(dns=dns.address, port=port, https=https.port, ca=ca))
        return relay, recorder, https
    yield run
    for stop in stops:
        stop()


def test_enforce_delivers_over_verified_tls_and_caches_the_policy(start):
    relay, recorder, https = start({"/.well-known/mta-sts.txt": policy_text("enforce")})
    send(relay, "b@secure.test")
    assert wait_for(lambda: len(recorder.messages) == 1, timeout=20)
    assert https.requests == 1
    cached = list((relay.data_dir / "spool" / "mta-sts").iterdir())
    assert [path.name for path in cached] == ["secure.test.json"]
    https.stop()
    send(relay, "c@secure.test")   # same id in DNS: the cached policy applies, no fetch needed
    assert wait_for(lambda: len(recorder.messages) == 2, timeout=20)


def test_enforce_refuses_mx_hosts_the_policy_does_not_name(start):
    relay, recorder, _ = start({"/.well-known/mta-sts.txt": policy_text("enforce", mx="other.secure.test")})
    send(relay, "b@secure.test")
    relay.wait_log("no MX host matches its MTA-STS policy", timeout=20)
    assert recorder.messages == [] and relay.spool_files() != []


def test_enforce_requires_tls(start):
    relay, recorder, _ = start({"/.well-known/mta-sts.txt": policy_text("enforce")}, starttls=False)
    send(relay, "b@secure.test")
    relay.wait_log("does not offer STARTTLS", timeout=20)
    assert recorder.messages == [] and relay.spool_files() != []


def test_testing_mode_delivers_and_logs(start):
    relay, recorder, _ = start({"/.well-known/mta-sts.txt": policy_text("testing", mx="other.testing.test")})
    send(relay, "b@testing.test")
    assert wait_for(lambda: len(recorder.messages) == 1, timeout=20)
    relay.wait_log("MTA-STS testing: enforce would skip MX hosts")


def test_an_invalid_policy_is_no_policy(start):
    """The policy URL answers something that is not a policy: delivery goes on as without MTA-STS, and says why."""
    relay, recorder, _ = start({})
    send(relay, "b@secure.test")
    assert wait_for(lambda: len(recorder.messages) == 1, timeout=20)
    relay.wait_log("MTA-STS policy fetch failed")


def test_simulate_shows_the_policy(tmp_path, tls):
    import subprocess
    from conftest import BINARY
    folder, ca = tls
    dns = dns_for(tmp_path, "simulate-dns")
    https = HTTPServer(tls_folder=folder, files={"/.well-known/mta-sts.txt": policy_text("enforce")})
    try:
        policy = tmp_path / "policy.lua"
        policy.write_text(POLICY.format(dns=dns.address, port=25, https=https.port, ca=ca))
        result = subprocess.run([str(BINARY), "simulate", str(policy), "--from", "a@example.org", "--to", "b@secure.test", "-"],
                                input="Subject: x\n\nhi\n", capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert any(line.startswith("mx") and "mx1.secure.test" in line for line in result.stdout.splitlines())
        assert any(line.startswith("mta-sts") and "enforce (mx: mx1.secure.test; max_age 86400)" in line
                   for line in result.stdout.splitlines()), result.stdout
    finally:
        dns.stop()
        https.stop()
