"""Upstream health, throttling, quotas and routed reports, against real
servers: a socket that accepts and never greets, a closed port, aiosmtpd
upstreams (throttling, deferring, accepting) and Postfix's smtp-source."""
import email
import email.policy
import smtplib
import subprocess
import time

import pytest

from conftest import BINARY, wait_for
from upstream import StalledServer, Upstream, free_port


def smarthost(name, port, extra=""):
    return (f'relais.smarthost {{ name = "{name}", host = "127.0.0.1", port = {port}, tls = "none", '
            f'timeout = 5{extra} }}')


@pytest.fixture
def servers():
    started = []

    def start(server):
        started.append(server.start())
        return server

    yield start
    for server in started:
        try:
            server.stop()
        except OSError:
            pass


def send(relay, recipients=("b@example.com",), sender="a@example.org", subject="health", options=()):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        client.mail(sender)
        for recipient in recipients:
            client.rcpt(recipient, list(options))
        client.data(f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def smtp_source(relay, count, sessions=10):
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(count), "-l", "512", "-d",
                    "-f", "a@example.org", "-t", "b@example.com", f"127.0.0.1:{relay.port}"],
                   check=True, timeout=120, capture_output=True)


def queue_list(relay):
    return subprocess.run([str(BINARY), "queue", "list", "--spool", str(relay.data_dir / "spool")],
                          capture_output=True, text=True, timeout=30).stdout


ROUTED = '''relais.config { relay_networks = { "127.0.0.0/8" }, queue = { retry_min = 60, retry_max = 120 } }
local target = TARGET
relais.on("route", function(msg, rcpt) return target end)
'''

FAILOVER = '''relais.config { relay_networks = { "127.0.0.0/8" }, queue = { retry_min = 1, retry_max = 2 } }
local primary = PRIMARY
local good = GOOD
relais.on("route", function(msg, rcpt) return { primary, good } end)
'''


def test_stalled_primary_is_skipped_once_down(policy_relay, servers):
    stalled = servers(StalledServer())
    good = servers(Upstream())
    relay = policy_relay(FAILOVER.replace("PRIMARY", smarthost("stalled", stalled.port,
                                                               ", connect_timeout = 2, health = { down_min = 60 }"))
                         .replace("GOOD", smarthost("good", good.port)))
    started = time.time()
    smtp_source(relay, 300)
    assert wait_for(lambda: len(good.messages) == 300, timeout=60), len(good.messages)
    elapsed = time.time() - started
    # Before the breaker, every message waited for the stalled greeting: 300 / 10 × 2 s = 60 s.
    assert elapsed < 15, elapsed
    # The first wave (max_connections) and at most the one retry allowed
    # while failures are being counted; none once the breaker opened.
    assert stalled.accepted <= 11, stalled.accepted
    assert relay.log.count("upstream down") == 1
    assert "upstream=stalled" in relay.log and "timeout waiting for the reply to greeting" in relay.log
    assert relay.wait_spool_empty() == []
    assert "upstream stalled: down until" in queue_list(relay)


def test_unreachable_primary_stops_being_tried(policy_relay, servers):
    good = servers(Upstream())
    relay = policy_relay(FAILOVER.replace("PRIMARY", smarthost("closed", free_port(), ", health = { down_min = 60 }"))
                         .replace("GOOD", smarthost("good", good.port)))
    smtp_source(relay, 100)
    assert wait_for(lambda: len(good.messages) == 100, timeout=30)
    # Refused connections until the third failure (and those already under way), then none.
    assert relay.log.count("upstream failed; trying the next one") <= 12
    assert relay.log.count("upstream down") == 1


def test_recovered_upstream_is_probed_and_used_again(policy_relay, servers):
    stalled = servers(StalledServer())
    good = servers(Upstream())
    relay = policy_relay(FAILOVER.replace("PRIMARY", smarthost("primary", stalled.port,
                                                               ", connect_timeout = 1, health = { failures = 1, down_min = 2 }"))
                         .replace("GOOD", smarthost("good", good.port)))
    send(relay, subject="during")
    assert wait_for(lambda: len(good.messages) == 1, timeout=15)
    relay.wait_log("upstream down")
    port = stalled.port
    stalled.stop()
    recovered = servers(Upstream(port=port))
    time.sleep(2.5)
    send(relay, subject="after")
    assert wait_for(lambda: len(recovered.messages) == 1, timeout=15), relay.log
    assert b"Subject: after" in recovered.messages[0][2]
    log = relay.wait_log("upstream up")
    assert log.index("upstream down") < log.index("upstream probing") < log.index("upstream up")


def test_upstream_silent_after_the_content_times_out_and_the_next_message_goes(policy_relay, servers):
    sink = servers(Upstream(data_delay=lambda content: 30 if b"Subject: stall" in content else 0))
    relay = policy_relay(ROUTED.replace("TARGET", smarthost("slow", sink.port, ", timeout = 2")))
    started = time.time()
    send(relay, subject="stall")
    relay.wait_log("timeout waiting for the reply to end of data", timeout=10)
    # The wait is the smarthost's timeout, not more.
    assert 1.5 <= time.time() - started <= 6
    send(relay, subject="after")
    assert wait_for(lambda: any(b"Subject: after" in m[2] for m in sink.messages), timeout=10), relay.log
    # The stalled one waits for its retry, with the reason.
    listing = queue_list(relay)
    assert "1 message(s) queued" in listing and "timeout waiting for the reply to end of data" in listing, listing


def test_throttling_reply_pauses_the_upstream(policy_relay, servers):
    throttling = servers(Upstream(mail_reply="421 4.7.0 Too many messages, slow down"))
    backup = servers(Upstream())
    relay = policy_relay(FAILOVER.replace("PRIMARY", smarthost("throttling", throttling.port,
                                                               ", max_connections = 1, health = { down_min = 60 }"))
                         .replace("GOOD", smarthost("backup", backup.port)))
    for number in range(20):
        send(relay, subject=f"m{number}")
    assert wait_for(lambda: len(backup.messages) == 20, timeout=30)
    # The first 421 paused it: the other messages did not knock again.
    assert throttling.recorder.mail_commands <= 2, throttling.recorder.mail_commands
    assert relay.log.count("upstream paused") == 1
    assert relay.wait_spool_empty() == []
    assert "upstream throttling: paused until" in queue_list(relay)


def test_quota_per_minute_defers_and_survives_a_restart(policy_relay, servers):
    up = servers(Upstream())
    # Start early in a UTC minute, so the test's sends share one window.
    while time.gmtime().tm_sec > 40:
        time.sleep(1)
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 1, retry_max = 2 }} }}
local up = {smarthost("up", up.port, ", quota = { per_minute = 3 }")}
relais.on("route", function(msg, rcpt) return up end)
''')
    for number in range(5):
        send(relay, subject=f"q{number}")
    assert wait_for(lambda: len(up.messages) == 3, timeout=10)
    time.sleep(1)
    assert len(up.messages) == 3
    listing = queue_list(relay)
    assert listing.count("quota per_minute = 3 used up") == 2, listing
    assert "upstream up: up, quota per_minute 3/3, 2 recipient(s) waiting" in listing
    relay.stop()
    relay.start()
    send(relay, subject="q5")
    time.sleep(2)
    assert len(up.messages) == 3, "the count was lost in the restart"
    # The next minute opens the window: everything goes (3 more fit).
    assert wait_for(lambda: len(up.messages) == 6, timeout=70)


BOUNCE_ROUTING = '''relais.config { relay_networks = { "127.0.0.0/8" }, queue = { retry_min = 1, retry_max = 1, delay_notice = 2 } }
local out = @OUT@
local reports = @REPORTS@
relais.on("route", function(msg, rcpt)
  if msg.is_bounce then
    assert(msg.sender == "")
    return @REPORT_ROUTE@
  end
  return out
end)
'''


def test_bounces_take_the_route_hook(policy_relay, servers):
    refusing = servers(Upstream(refuse=["b@example.com"]))
    reports = servers(Upstream())
    relay = policy_relay(BOUNCE_ROUTING.replace("@OUT@", smarthost("out", refusing.port))
                         .replace("@REPORTS@", smarthost("reports", reports.port)).replace("@REPORT_ROUTE@", "reports"))
    send(relay, subject="refused here")
    assert wait_for(lambda: reports.messages, timeout=15), relay.log
    sender, recipients, content = reports.messages[0]
    assert sender == "<>" and recipients == ["a@example.org"]
    report = email.message_from_bytes(content, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    status = report.get_payload()[1].get_payload()
    assert any(part.get("Action") == "failed" and part.get("Status") == "5.1.1" for part in status)
    assert relay.maildir_messages(0, timeout=0.5) == []


def test_delay_notice_once_for_notify_delay(policy_relay, servers):
    deferring = servers(Upstream(mail_reply="451 4.3.0 Try again later"))
    relay = policy_relay(BOUNCE_ROUTING.replace("@OUT@", smarthost("out", deferring.port))
                         .replace("@REPORTS@", "nil").replace("@REPORT_ROUTE@", "nil"))
    send(relay, subject="asked", options=["NOTIFY=DELAY,FAILURE"])
    send(relay, recipients=["c@example.com"], subject="did not ask")
    [notice] = relay.maildir_messages(1, timeout=15)
    report = email.message_from_bytes(notice, policy=email.policy.default)
    assert report["Subject"] == "Delayed Mail (still being retried)"
    status = report.get_payload()[1].get_payload()
    recipient = [part for part in status if part.get("Final-Recipient")][0]
    assert recipient["Action"] == "delayed" and recipient["Status"] == "4.3.0"
    assert "rfc822; b@example.com" in recipient["Final-Recipient"]
    assert report.get_payload()[2].get_content_type() == "text/rfc822-headers"
    # Once per recipient, and none for the one that did not ask.
    time.sleep(4)
    assert len(relay.maildir_messages(0)) == 1
