"""Direct MX delivery (RFC 5321 5.1, RFC 7505): dnsmasq serves the MX and
address records, aiosmtpd is the MX host, on loopback ports."""
import smtplib

import pytest

from conftest import wait_for
from services import DNSServer
from upstream import Upstream


@pytest.fixture
def mx_host():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def dns(tmp_path):
    server = DNSServer(tmp_path / "dns", [
        "mx-host=direct.test,mx1.direct.test,10",
        "address=/mx1.direct.test/127.0.0.1",
        # The preferred MX answers nowhere (127.0.0.2); the next one works.
        "mx-host=failover.test,dead.failover.test,10",
        "mx-host=failover.test,good.failover.test,20",
        "address=/dead.failover.test/127.0.0.2",
        "address=/good.failover.test/127.0.0.1",
        # No MX: the domain's own address is the implicit MX (local data: MX is NOERROR, empty).
        "local=/implicit.test/",
        "host-record=implicit.test,127.0.0.1",
        "mx-host=nullmx.test,.,0",
    ], nxdomain=["nx.test"])
    yield server
    server.stop()


POLICY = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, dns = {{ servers = {{ "{dns}" }}, timeout = 1 }},
  queue = {{ retry_min = 1, retry_max = 2 }} }}
local direct = relais.mx {{ port = {port}, tls = "opportunistic", helo = "out.relay.test" }}
relais.on("route", function(msg, rcpt) if msg.is_bounce then return nil end return direct end)
'''


def send(relay, recipients):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", recipients, b"Subject: direct\r\n\r\nhello\r\n")


@pytest.mark.parametrize("domain", ["direct.test", "failover.test", "implicit.test"])
def test_mail_reaches_the_domains_mx(policy_relay, dns, mx_host, domain):
    relay = policy_relay(POLICY.format(dns=dns.address, port=mx_host.port))
    send(relay, [f"b@{domain}"])
    assert wait_for(lambda: len(mx_host.messages) == 1, timeout=20)
    assert mx_host.messages[0][1] == [f"b@{domain}"]
    assert relay.wait_spool_empty(timeout=10) == []


@pytest.mark.parametrize("domain, reply", [
    ("nullmx.test", b"556 5.1.10 nullmx.test accepts no mail (null MX, RFC 7505)"),
    ("nope.nx.test", b"550 5.1.2 nope.nx.test: no such domain (NXDOMAIN)"),
])
def test_null_mx_and_missing_domains_bounce(policy_relay, dns, mx_host, domain, reply):
    relay = policy_relay(POLICY.format(dns=dns.address, port=mx_host.port))
    send(relay, [f"b@{domain}"])
    [bounce] = relay.maildir_messages(1, timeout=20)
    assert reply in bounce
    assert mx_host.messages == []


def test_a_dns_failure_defers(policy_relay, dns, mx_host):
    relay = policy_relay(POLICY.format(dns=dns.address, port=mx_host.port))
    send(relay, ["b@unknown.test"])
    relay.wait_log("MX lookup failed (SERVFAIL)", timeout=20)
    assert wait_for(lambda: relay.spool_files() != []), "the message stays queued"
    assert relay.maildir_messages(0) == []


def test_one_message_to_several_domains(policy_relay, dns, mx_host):
    relay = policy_relay(POLICY.format(dns=dns.address, port=mx_host.port))
    send(relay, ["b@direct.test", "c@implicit.test", "d@nullmx.test"])
    assert wait_for(lambda: len(mx_host.messages) == 2, timeout=20)
    assert sorted(r for m in mx_host.messages for r in m[1]) == ["b@direct.test", "c@implicit.test"]
    [bounce] = relay.maildir_messages(1, timeout=20)
    assert b"d@nullmx.test" in bounce


def test_simulate_shows_the_mx_plan(tmp_path, dns, mx_host):
    import subprocess
    from conftest import BINARY
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY.format(dns=dns.address, port=mx_host.port))
    result = subprocess.run([str(BINARY), "simulate", str(policy), "--from", "a@example.org", "--to", "b@failover.test",
                             "--to", "c@nullmx.test", "-"], input="Subject: x\n\nhi\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("route") and f"mx(port {mx_host.port}, tls opportunistic)" in line for line in lines)
    assert any(line.startswith("mx") and "failover.test" in line
               and "dead.failover.test, good.failover.test" in line for line in lines), result.stdout
    assert any(line.startswith("mx") and "bounce: 556 5.1.10" in line for line in lines), result.stdout
