"""Relaying to real upstream servers (aiosmtpd, Postfix's smtp-sink):
failover, retries, per-recipient results, bounces, byte-exact content."""
import email
import email.policy
import smtplib
import subprocess
import time

import pytest

from conftest import wait_for
from test_admin import samples
from upstream import Upstream, free_port


def smarthost(name, port, extra=""):
    return (f'relais.smarthost {{ name = "{name}", host = "127.0.0.1", port = {port}, tls = "none", '
            f'timeout = 5{extra} }}')


POLICY = '''relais.config { relay_networks = { "127.0.0.0/8" }, queue = { retry_min = 1, retry_max = 2, max_age = MAXAGE } }
local first = FIRST
local second = SECOND
relais.on("route", function(msg, rcpt)
  if msg.is_bounce then return nil end   -- reports to senders stay in the local maildir
  return { first, second }
end)
'''


def relay_policy(first, second, max_age=600):
    return POLICY.replace("FIRST", first).replace("SECOND", second).replace("MAXAGE", str(max_age))


@pytest.fixture
def upstreams():
    started = []

    def start(**behaviour):
        upstream = Upstream(**behaviour).start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.stop()


def send(relay, recipients=("b@example.com",), body=b"Subject: relayed\r\n\r\nhello\r\n", sender="a@example.org"):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        return client.sendmail(sender, list(recipients), body)


def test_relays_byte_exact_with_dot_stuffing(policy_relay, upstreams):
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("main", up.port), smarthost("spare", free_port())))
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast\r\n"
    send(relay, ["b@example.com", "c@example.net"], body)
    assert wait_for(lambda: up.messages)
    sender, recipients, content = up.messages[0]
    assert sender == "a@example.org"
    assert recipients == ["b@example.com", "c@example.net"]
    assert content.startswith(b"Received: from ")
    assert content.endswith(b"\r\n" + body)
    assert relay.wait_spool_empty() == []
    log = relay.wait_log("result=delivered")
    assert "upstream=main" in log and "reply=250 2.0.0 Accepted by the test upstream" in log


def test_relays_byte_exact_by_bdat_to_an_upstream_offering_chunking(policy_relay, start_relay):
    """A second Relais offers CHUNKING: the content, the smarthost's header
    field before it, and lines starting with dots arrive as they were sent,
    in one BDAT whose size counts them all."""
    upstream = start_relay()
    relay = policy_relay(relay_policy(smarthost("next", upstream.port, ', headers = { ["X-Stream"] = "outbound" }'),
                                      smarthost("spare", free_port())))
    body = b"Subject: chunked\r\n\r\n.leading dot\r\n..two\r\n.\r\n" + b"".join(b"line %d\r\n" % n for n in range(8000)) + b"last\r\n"
    send(relay, body=body)
    [delivered] = upstream.maildir_messages(wait_for=1)
    trace, rest = delivered.split(b"\r\nX-Stream: outbound\r\n", 1)
    assert trace.startswith(b"Received: from ")
    assert rest.startswith(b"Received: from ")
    assert rest.endswith(b"\r\n" + body)
    assert relay.wait_spool_empty() == []
    assert "upstream=next" in relay.wait_log("result=delivered")


@pytest.mark.parametrize("behaviour", [
    {"mail_reply": "421 4.3.2 Going down"},
    {"mail_reply": "451 4.3.0 Try later"},
    {"mail_reply": "451 4.3.0 Try later", "pipelining": True},
])
def test_failover_on_4xx_at_mail(behaviour, policy_relay, upstreams):
    bad, good = upstreams(**behaviour), upstreams()
    relay = policy_relay(relay_policy(smarthost("bad", bad.port), smarthost("good", good.port)))
    send(relay)
    assert wait_for(lambda: good.messages)
    assert bad.messages == []
    assert "upstream failed; trying the next one" in relay.log


def test_failover_when_first_upstream_is_not_listening(policy_relay, upstreams):
    good = upstreams()
    relay = policy_relay(relay_policy(smarthost("down", free_port()), smarthost("good", good.port)))
    send(relay)
    assert wait_for(lambda: good.messages)
    assert "cannot connect" in relay.log


def test_retry_until_the_upstream_comes_back(policy_relay, upstreams):
    port = free_port()
    relay = policy_relay(relay_policy(smarthost("late", port), smarthost("late2", port)))
    send(relay)
    relay.wait_log("result=deferred")
    # The state is appended to the message's file, written then if the journal alone held it.
    assert wait_for(lambda: [f for f in relay.spool_files() if b"\nstate " in f.read_bytes()])
    [queued] = relay.spool_files()
    assert b'"status":"pending"' in queued.read_bytes()
    up = upstreams(port=port)
    assert wait_for(lambda: up.messages, timeout=20)
    assert relay.wait_spool_empty() == []


def state_records(path):
    return [line for line in path.read_bytes().split(b"\n") if line.startswith(b"state ")]


def test_a_message_retried_many_times_keeps_a_short_file(policy_relay, upstreams):
    from conftest import BINARY
    up = upstreams(mail_reply="451 4.3.0 Try later")
    relay = policy_relay(relay_policy(smarthost("busy", up.port), smarthost("busy2", up.port))
                         .replace("retry_min = 1, retry_max = 2", "retry_min = 0.05, retry_max = 0.05"))
    send(relay)
    assert wait_for(lambda: relay.log.count("result=deferred") >= 40, timeout=30)
    path = relay.spool_files()[0]
    # One record appended per attempt, folded into one every 16.
    assert 1 <= len(state_records(path)) <= 16
    shown = subprocess.run([str(BINARY), "queue", "show", path.name, "--spool", str(relay.data_dir / "spool")],
                           capture_output=True, text=True, timeout=30).stdout
    attempts = int(shown.split("<b@example.com>  pending, ")[1].split(" attempt(s)")[0])
    assert attempts >= 40
    up.recorder.mail_reply = None
    assert wait_for(lambda: up.messages, timeout=20)
    assert relay.wait_spool_empty() == []
    assert len(up.messages) == 1


def test_an_earlier_builds_state_file_is_honoured(policy_relay, upstreams):
    """A spool left by a build that kept each message's state in
    spool/state/<ID>: after the upgrade, a recipient that build delivered
    is not delivered again, and the state folder is gone."""
    import json
    port = free_port()
    relay = policy_relay(relay_policy(smarthost("late", port), smarthost("late2", port)))
    send(relay, ["b@example.com", "c@example.com"])
    relay.wait_log("result=deferred")
    assert wait_for(lambda: relay.spool_files() and state_records(relay.spool_files()[0]))
    relay.stop()
    path = relay.spool_files()[0]
    stored = path.read_bytes()
    head_end = stored.index(b"\n") + 1
    content_size = json.loads(stored[:head_end])["contentSize"]
    state = json.loads(state_records(path)[-1].split(b" ", 2)[2])
    state["recipients"][0]["status"] = "delivered"
    legacy = relay.data_dir / "spool" / "state"
    legacy.mkdir()
    (legacy / path.name).write_text(json.dumps(state, indent=2))
    path.write_bytes(stored[:head_end + content_size])
    up = upstreams(port=port)
    relay.start()
    assert wait_for(lambda: up.messages, timeout=20)
    assert relay.wait_spool_empty() == []
    assert [m[1] for m in up.messages] == [["c@example.com"]]
    assert "upgraded to this build's spool layout" in relay.log
    assert not legacy.exists()


def test_dropped_connection_in_data_is_retried(policy_relay, upstreams):
    flaky = upstreams(drop_in_data=True)
    relay = policy_relay(relay_policy(smarthost("flaky", flaky.port), smarthost("flaky2", flaky.port)))
    send(relay)
    relay.wait_log("result=deferred")
    flaky.recorder.drop_in_data = False
    assert wait_for(lambda: flaky.messages, timeout=20)
    assert relay.wait_spool_empty() == []


def test_a_short_message_in_a_recycled_spool_file_reads_back_whole(policy_relay, upstreams):
    """A delivered message's spool file is kept in free/ and written over by
    a later message: a shorter message's file, and what its retry sends,
    is exactly itself, with nothing of the longer one after it."""
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    free = relay.data_dir / "spool" / "free"
    long_body = b"Subject: long\r\n\r\n" + b"x" * 70 + b"\r\n" + (b"y" * 78 + b"\r\n") * 500
    # Deferred first, so that each gets a file: one delivered at once never
    # has one (the spool's journal held it).
    up.recorder.mail_reply = "451 4.3.0 Try again later"
    for _ in range(2):
        send(relay, ["b@example.com"], long_body)
    assert wait_for(lambda: relay.log.count("result=deferred") >= 2)
    up.recorder.mail_reply = None
    assert wait_for(lambda: len(up.messages) == 2, timeout=20)
    assert relay.wait_spool_empty() == []
    assert wait_for(lambda: len(list(free.iterdir())) == 2)
    # A start makes their move to free/ durable: they are ready to be written over.
    relay.stop()
    relay.start()
    offset = len(relay.log)
    up.recorder.mail_reply = "451 4.3.0 Try again later"
    send(relay, ["b@example.com"], b"Subject: short\r\n\r\nshort\r\n")
    relay.wait_log("result=deferred", after=offset)
    assert wait_for(lambda: len(relay.spool_files()) == 1)
    stored = relay.spool_files()[0].read_bytes()
    assert b"Subject: short\r\n\r\nshort\r\n" in stored and b"yyyy" not in stored
    assert len(list(free.iterdir())) == 1
    up.recorder.mail_reply = None
    assert wait_for(lambda: len(up.messages) == 3, timeout=20)
    assert up.messages[2][2].endswith(b"\r\nSubject: short\r\n\r\nshort\r\n")
    assert b"yyyy" not in up.messages[2][2]
    # The removal is not waited for: the file is back in free/ once it has left queue/.
    assert relay.wait_spool_empty() == []
    assert wait_for(lambda: len(list(free.iterdir())) == 2)


def test_a_stop_right_after_delivery_leaves_nothing_to_deliver_again(policy_relay, upstreams):
    """A delivered message leaves no file behind: one the journal alone held
    never had one, and one that had a file (it waited) is recycled at once
    or, if it is waiting to be handed over to the next message, at the stop.
    A restart delivers nothing twice."""
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    up.recorder.mail_reply = "451 4.3.0 Try again later"
    for number in range(5):
        send(relay, ["b@example.com"], f"Subject: deferred {number}\r\n\r\nbody\r\n".encode())
    assert wait_for(lambda: len(relay.spool_files()) == 5)
    up.recorder.mail_reply = None
    for number in range(5):
        send(relay, ["b@example.com"], f"Subject: {number}\r\n\r\nbody\r\n".encode())
    assert wait_for(lambda: len(up.messages) == 10, timeout=20, interval=0.005)
    relay.stop()
    assert relay.spool_files() == []
    assert len(list((relay.data_dir / "spool" / "free").iterdir())) >= 5
    relay.start()
    time.sleep(1)
    assert len(up.messages) == 10


@pytest.mark.parametrize("pipelining", [False, True])
def test_one_refused_recipient_is_bounced(pipelining, policy_relay, upstreams):
    up = upstreams(refuse=["nobody@example.com"], pipelining=pipelining)
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send(relay, ["b@example.com", "nobody@example.com"])
    assert wait_for(lambda: up.messages)
    assert up.messages[0][1] == ["b@example.com"]
    [bounce] = relay.maildir_messages(1)
    report = email.message_from_bytes(bounce, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status").as_string()
    assert "Final-Recipient: rfc822; nobody@example.com" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in status
    original = next(p for p in report.walk() if p.get_content_type() == "message/rfc822")
    assert original.get_content().get("Subject") == "relayed"
    assert relay.wait_spool_empty() == []


def test_three_upstreams_one_refusing(policy_relay, upstreams):
    one, two, refusing = upstreams(), upstreams(), upstreams(refuse=["c@three.example"])
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }} }}
local routes = {{ ["one.example"] = {smarthost("one", one.port)}, ["two.example"] = {smarthost("two", two.port)},
  ["three.example"] = {smarthost("three", refusing.port)} }}
relais.on("route", function(msg, rcpt) return routes[rcpt.domain] end)
''')
    send(relay, ["a@one.example", "b@two.example", "c@three.example"])
    assert wait_for(lambda: one.messages and two.messages)
    assert one.messages[0][1] == ["a@one.example"] and two.messages[0][1] == ["b@two.example"]
    [bounce] = relay.maildir_messages(1)
    assert b"Final-Recipient: rfc822; c@three.example" in bounce
    assert refusing.messages == []


def test_pipelined_data_after_every_recipient_refused(policy_relay, upstreams):
    """MAIL, RCPT and DATA go in one group to an upstream offering
    PIPELINING; when every RCPT is refused, DATA is refused too, the
    recipient bounces and the same connection carries the next message."""
    up = upstreams(refuse=["nobody@example.com"], pipelining=True)
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send(relay, ["nobody@example.com"])
    [bounce] = relay.maildir_messages(1)
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user here" in bounce
    send(relay, ["b@example.com"], b"Subject: next\r\n\r\nhello\r\n")
    assert wait_for(lambda: up.messages)
    assert [m[1] for m in up.messages] == [["b@example.com"]]
    assert up.messages[0][2].endswith(b"Subject: next\r\n\r\nhello\r\n")
    assert up.controller.most == 1
    assert relay.wait_spool_empty() == []


def test_no_bounce_for_the_null_sender(policy_relay, upstreams):
    up = upstreams(refuse=["nobody@example.com"])
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send(relay, ["nobody@example.com"], sender="")
    relay.wait_log("result=failed")
    assert relay.wait_spool_empty() == []
    assert relay.maildir_messages(0, timeout=0.5) == []


def test_max_age_gives_up_and_bounces(policy_relay):
    relay = policy_relay(relay_policy(smarthost("down", free_port()), smarthost("down2", free_port()), max_age=1))
    send(relay)
    [bounce] = relay.maildir_messages(1, timeout=20)
    assert b"gave up after 1s in the queue" in bounce
    assert relay.wait_spool_empty() == []


def test_smtp_sink_receives_relayed_mail(policy_relay, tmp_path):
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "root", "-d", str(tmp_path / "sink-%M."), f"127.0.0.1:{port}", "100"],
                            cwd=tmp_path)
    try:
        time.sleep(0.3)
        relay = policy_relay(relay_policy(smarthost("sink", port), smarthost("sink2", port)))
        for _ in range(5):
            send(relay)
        assert relay.wait_spool_empty() == []
        assert wait_for(lambda: relay.log.count("result=delivered") == 5)
        dumps = list(tmp_path.glob("sink-*"))
        assert dumps and b"Subject: relayed" in dumps[0].read_bytes()
    finally:
        sink.kill()


def test_smarthost_errors_are_clear(policy_relay, tmp_path):
    import subprocess as sp
    from conftest import BINARY
    policy = tmp_path / "p.lua"
    policy.write_text('relais.smarthost { host = "mx.example", tls = "sometimes" }')
    result = sp.run([str(BINARY), "check", str(policy)], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'p.lua:1: relais.smarthost: tls must be "starttls", "implicit", "opportunistic" or "none"' in result.stderr


def test_queue_list_show_flush_delete(policy_relay, upstreams):
    from conftest import BINARY
    port = free_port()
    relay = policy_relay(relay_policy(smarthost("later", port), smarthost("later2", port))
                         .replace("retry_min = 1, retry_max = 2", "retry_min = 300, retry_max = 600"))
    send(relay, ["b@example.com"], b"Subject: first\r\n\r\nx\r\n")
    send(relay, ["c@example.com"], b"Subject: second\r\n\r\nx\r\n")
    assert wait_for(lambda: relay.log.count("result=deferred") == 2)
    spool = str(relay.data_dir / "spool")

    def queue(*args):
        return subprocess.run([str(BINARY), "queue", *args, "--spool", spool], capture_output=True, text=True, timeout=30)

    listing = queue("list").stdout
    assert "2 message(s) queued" in listing
    assert "<b@example.com>  pending, 1 attempt(s), next in " in listing
    assert "cannot connect" in listing
    first, second = sorted(line.split()[0] for line in listing.splitlines() if not line.startswith(" ") and "queued" not in line)
    stored = (relay.data_dir / "spool" / "queue" / first).read_bytes()
    size = len(stored[stored.index(b"\n") + 1:].split(b"\nstate ")[0])   # the message after the envelope line
    assert f" {size} bytes  from <a@example.org>" in listing
    page = queue("list", "--offset", "1", "--limit", "1").stdout
    assert second in page and first not in page and "2 message(s) queued (showing 2-2)" in page
    shown = queue("show", first).stdout
    assert "route: smarthost:later(127.0.0.1:" in shown and "Subject: first" in shown
    assert queue("delete", second).stdout.strip() == f"ok deleted {second}"
    up = upstreams(port=port)
    assert queue("flush").stdout.startswith("ok 1 message(s) due now")
    assert wait_for(lambda: up.messages)
    assert [m[2].split(b"Subject: ")[1][:5] for m in up.messages] == [b"first"]
    assert relay.wait_spool_empty() == []
    assert queue("list").stdout.strip() == "0 message(s) queued"
    assert queue("show", "NOSUCHID").returncode != 0


@pytest.mark.parametrize("command,reply", [
    (b"MAIL FROM:<a@example.org> RET=SOME\r\n", b"501 5.5.4 Error: RET must be FULL or HDRS\r\n"),
    (b"MAIL FROM:<a@example.org> ENVID=bad+zz\r\n", b"501 5.5.4 Error: ENVID must be xtext of at most 100 characters\r\n"),
    (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com> NOTIFY=NEVER,SUCCESS\r\n",
     b"250 2.1.0 Ok\r\n501 5.5.4 Error: NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY\r\n"),
    (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com> ORCPT=nosemicolon\r\n",
     b"250 2.1.0 Ok\r\n501 5.5.4 Error: ORCPT must be addr-type;xtext\r\n"),
    (b"MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2B1\r\nRCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com\r\n",
     b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
])
def test_dsn_parameters_are_checked(command, reply, relay):
    from conftest import Dialog
    d = Dialog(relay.port)
    d.ehlo()
    d.send(command)
    assert d.replies(reply.count(b"\r\n")) == reply


def send_dsn(relay, recipients, mail_options, rcpt_options):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        client.mail("a@example.org", mail_options)
        for recipient in recipients:
            client.rcpt(recipient, rcpt_options)
        client.data(b"Subject: dsn\r\n\r\nbody text\r\n")


def test_notify_never_suppresses_the_bounce(policy_relay, upstreams):
    up = upstreams(refuse=["nobody@example.com"])
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send_dsn(relay, ["nobody@example.com"], [], ["NOTIFY=NEVER"])
    relay.wait_log("result=failed")
    assert relay.wait_spool_empty() == []
    assert relay.maildir_messages(0, timeout=0.5) == []


def test_notify_success_gets_a_relayed_report_with_headers_only(policy_relay, upstreams):
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send_dsn(relay, ["b@example.com"], ["ENVID=env+2B42"], ["NOTIFY=SUCCESS", "ORCPT=rfc822;orig@example.com"])
    assert wait_for(lambda: up.messages)
    [report] = relay.maildir_messages(1)
    parsed = email.message_from_bytes(report, policy=email.policy.default)
    assert parsed["Subject"] == "Successful Mail Delivery Report"
    status = next(p for p in parsed.walk() if p.get_content_type() == "message/delivery-status").as_string()
    assert "Original-Envelope-Id: env+2B42" in status
    assert "Original-Recipient: rfc822;orig@example.com" in status
    assert "Action: relayed" in status and "Status: 2.0.0" in status
    assert any(p.get_content_type() == "text/rfc822-headers" for p in parsed.walk())
    assert b"body text" not in report


def test_ret_hdrs_bounce_has_headers_only(policy_relay, upstreams):
    up = upstreams(refuse=["nobody@example.com"])
    relay = policy_relay(relay_policy(smarthost("up", up.port), smarthost("up2", up.port)))
    send_dsn(relay, ["nobody@example.com"], ["RET=HDRS"], [])
    [bounce] = relay.maildir_messages(1)
    assert b"Content-Type: text/rfc822-headers" in bounce
    assert b"Subject: dsn" in bounce and b"body text" not in bounce


def test_dsn_parameters_pass_to_an_upstream_offering_dsn(policy_relay, tmp_path):
    port = free_port()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    sink = subprocess.Popen(["smtp-sink", "-u", "root", "-d", str(dumps / "m"), f"127.0.0.1:{port}", "10"])
    try:
        time.sleep(0.3)
        relay = policy_relay(relay_policy(smarthost("sink", port), smarthost("sink2", port)))
        send_dsn(relay, ["b@example.com"], ["RET=HDRS", "ENVID=abc"], ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b@example.com"])
        assert wait_for(lambda: list(dumps.iterdir()))
        [dump] = list(dumps.iterdir())
        text = dump.read_bytes()
        assert b"RET=HDRS" in text and b"ENVID=abc" in text
        assert b"NOTIFY=SUCCESS,FAILURE" in text and b"ORCPT=rfc822;b@example.com" in text
        # The upstream took over: no success report from Relais.
        assert relay.maildir_messages(0, timeout=0.5) == []
    finally:
        sink.kill()


def test_rate_and_connection_limits(policy_relay, upstreams):
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("slow", up.port, ", rate = 5, max_connections = 2"),
                                      smarthost("slow2", up.port)))
    import threading
    threads = [threading.Thread(target=send, args=(relay,)) for _ in range(10)]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_for(lambda: len(up.messages) == 10, timeout=20)
    elapsed = time.time() - start
    assert elapsed >= 1.6, f"10 messages at 5/s took only {elapsed:.2f}s"
    assert up.controller.most <= 2


def test_an_upstream_slower_than_the_clients_fills_the_spool_not_memory(policy_relay, upstreams):
    """20 messages of 240 KiB behind an upstream taking 4 a second: the queue
    holds at most queue.memory (1 MiB) of their content, reads the rest back
    from the spool when its turn comes, and every message arrives whole."""
    up = upstreams()
    admin = free_port()
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ memory = 1048576 }},
                                 admin = {{ listen = "127.0.0.1:{admin}" }} }}
local slow = {smarthost("slow", up.port, ", rate = 4, max_connections = 1")}
relais.on("route", function(msg, rcpt) return slow end)
''')
    relay.wait_log("admin endpoint listening")

    bodies = [b"Subject: big %d\r\n\r\n" % n + b"".join(b"%02d line %05d\r\n" % (n, line) for line in range(16384))
              for n in range(20)]
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        for body in bodies:
            client.sendmail("a@example.org", ["b@example.com"], body)
    observed = []
    while len(up.messages) < 20:
        observed.append(samples(admin)[("relais_queue_content_bytes", ())])
        assert len(observed) < 200, f"only {len(up.messages)} of 20 delivered"
        time.sleep(0.05)
    assert max(observed) <= 1048576
    assert max(observed) >= 200 * 1024  # a message was held: the gauge measures
    assert sorted(content.split(b"\r\n\r\n", 1)[1] for _, _, content in up.messages) == \
        sorted(body.split(b"\r\n\r\n", 1)[1] for body in bodies)
    assert relay.wait_spool_empty() == []


def test_small_messages_held_for_a_stalled_upstream_take_only_the_memory_they_need(policy_relay, upstreams):
    """The budget counts what a held message takes, a buffer its size (4 KiB
    for 3 KB), not the buffer the intake began with (32 KiB): while the
    upstream stalls on the first message, 17 fill a budget of 17 x 4 KiB."""
    up = upstreams(data_delay=lambda content: 3 if b"Subject: stall" in content else 0)
    admin = free_port()
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ memory = {17 * 4096} }},
                                 admin = {{ listen = "127.0.0.1:{admin}" }} }}
local stalled = {smarthost("stalled", up.port, ", max_connections = 1")}
relais.on("route", function(msg, rcpt) return stalled end)
''')
    relay.wait_log("admin endpoint listening")
    bodies = [b"Subject: %s %d\r\n\r\n" % (b"stall" if n == 0 else b"small", n) + (b"x" * 60 + b"\r\n") * 50 for n in range(30)]
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        for body in bodies:
            client.sendmail("a@example.org", ["b@example.com"], body)
    held = samples(admin)[("relais_queue_content_bytes", ())]
    assert len(up.messages) == 0  # still stalled on the first
    assert held == 17 * 4096
    assert wait_for(lambda: len(up.messages) == 30, timeout=30)
    assert sorted(content.split(b"\r\n\r\n", 1)[1] for _, _, content in up.messages) == \
        sorted(body.split(b"\r\n\r\n", 1)[1] for body in bodies)
    assert relay.wait_spool_empty() == []
    assert samples(admin)[("relais_queue_content_bytes", ())] == 0


def test_connections_are_reused_up_to_the_limit(policy_relay, upstreams):
    up = upstreams()
    relay = policy_relay(relay_policy(smarthost("reuse", up.port, ", max_connections = 1, messages_per_connection = 3"),
                                      smarthost("reuse2", up.port)))
    for _ in range(7):
        send(relay)
    assert wait_for(lambda: len(up.messages) == 7)
    # 7 messages, 3 per connection, one at a time: the upstream saw a second and a third connection.
    assert up.controller.most == 1


def test_smtputf8_message_to_an_upstream_without_smtputf8_bounces(policy_relay, upstreams):
    up = upstreams(smtputf8=False)
    relay = policy_relay(relay_policy(smarthost("ascii", up.port), smarthost("ascii2", up.port)))
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        client.sendmail("a@example.org", ["用户@例子.广告"], "Subject: utf8\r\n\r\nx\r\n".encode(), mail_options=["SMTPUTF8"])
    [bounce] = relay.maildir_messages(1)
    assert b"Status: 5.6.7" in bounce
    assert up.messages == []


def test_eight_bit_message_to_an_upstream_without_8bitmime_bounces(policy_relay, tmp_path):
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "root", "-8", f"127.0.0.1:{port}", "10"])
    try:
        time.sleep(0.3)
        relay = policy_relay(relay_policy(smarthost("seven", port), smarthost("seven2", port)))
        send(relay, body="Subject: 8bit\r\n\r\ncafé\r\n".encode())
        send(relay, body=b"Subject: 7bit\r\n\r\ncafe\r\n")
        [bounce] = relay.maildir_messages(1)
        assert b"Status: 5.6.3" in bounce
        assert wait_for(lambda: relay.log.count("result=delivered") == 1)
    finally:
        sink.kill()


def test_restart_resumes_the_schedule(policy_relay, upstreams):
    from conftest import BINARY
    port = free_port()
    relay = policy_relay(relay_policy(smarthost("later", port), smarthost("later2", port))
                         .replace("retry_min = 1, retry_max = 2", "retry_min = 300, retry_max = 600"))
    send(relay, ["b@example.com", "c@example.com"])
    relay.wait_log("result=deferred")
    relay.stop()
    relay.start()
    relay.wait_log("resuming queue")
    listing = subprocess.run([str(BINARY), "queue", "list", "--spool", str(relay.data_dir / "spool")],
                             capture_output=True, text=True).stdout
    # Still waiting for its next attempt (not retried at once on restart).
    assert "<b@example.com>  pending, 1 attempt(s), next in " in listing
    time.sleep(0.5)
    assert relay.log.count("result=deferred") == 2
    up = upstreams(port=port)
    subprocess.run([str(BINARY), "queue", "flush", "--spool", str(relay.data_dir / "spool")], check=True,
                   capture_output=True)
    assert wait_for(lambda: up.messages)
    assert relay.wait_spool_empty() == []
