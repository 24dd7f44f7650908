"""Every hook and verdict of a Lua policy, through real SMTP sessions."""
import email
import email.policy
import smtplib

import pytest

from conftest import Dialog

RELAY_ALL = 'relais.config { relay_networks = { "127.0.0.0/8" } }\n'
NO_RELAY = 'relais.config { relay_networks = { "192.0.2.0/24" }, greeting_delay = 0 }\n'


def send(relay, sender="a@example.org", recipients=("b@example.com",), body=b"Subject: t\r\n\r\nbody\r\n"):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        return client.sendmail(sender, list(recipients), body)


def test_connect_reject_closes_with_the_reply(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("connect", function(session)
  if session.remote_ip == "127.0.0.1" then return relais.reject(554, "5.7.1 Not from here") end
end)''')
    d = Dialog(relay.port, read_greeting=False)
    assert d.replies(1) == b"554 5.7.1 Not from here\r\n"
    assert d.closed()


@pytest.mark.parametrize("verdict,reply", [
    ('relais.reject(550, "5.7.1 Who are you")', b"550 5.7.1 Who are you\r\n"),
    ('relais.tempfail()', b"451 4.7.1 Try again later\r\n"),
    ('relais.reject("Go away")', b"550 5.7.1 Go away\r\n"),
    ('relais.reject(554)', b"554 5.7.1 Rejected by policy\r\n"),
])
def test_helo_verdicts(verdict, reply, policy_relay):
    relay = policy_relay(RELAY_ALL + f'''
relais.on("helo", function(session, name)
  if name == "bad.example" then return {verdict} end
end)''')
    d = Dialog(relay.port)
    d.send(b"EHLO bad.example\r\nMAIL FROM:<a@example.org>\r\nEHLO good.example\r\n")
    out = d.replies(3)
    assert out.startswith(reply + b"503 5.5.1 Error: send HELO/EHLO first\r\n250-relay.test greets good.example\r\n")


def test_disconnect_verdict(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("mail", function(session, sender) return relais.disconnect(421, "4.7.0 Bye now") end)''')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\n")
    assert d.replies(1) == b"421 4.7.0 Bye now\r\n"
    assert d.closed()


def test_mail_and_rcpt_rewrites_reach_the_delivered_message(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("mail", function(session, sender)
  if sender.domain == "internal.example" then sender.address = sender.localpart .. "@example.com" end
end)
relais.on("rcpt", function(session, rcpt)
  if rcpt.domain == "old.example" then rcpt.address = rcpt.localpart .. "@new.example" end
end)
relais.on("data", function(session, msg)
  msg:add_header("X-Envelope-From", msg.sender)
  msg:add_header("X-Envelope-To", table.concat(msg.recipients, ","))
end)''')
    assert send(relay, "alice@internal.example", ["bob@old.example"]) == {}
    [message] = relay.maildir_messages(1)
    assert b"\tfor <bob@new.example>;" in message
    assert b"\r\nX-Envelope-To: bob@new.example\r\nX-Envelope-From: alice@example.com\r\n" in message


def test_invalid_rewrite_is_a_hook_error(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("rcpt", function(session, rcpt)
  rcpt.address = "not an address"
end)''')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
    assert d.replies(2) == b"250 2.1.0 Ok\r\n451 4.3.0 Error: local policy failure; try again later\r\n"
    log = relay.wait_log("policy hook failed")
    assert 'policy.lua:4: invalid address "not an address": address has no domain' in log


def test_rcpt_verdicts_and_the_relay_default(policy_relay):
    relay = policy_relay(NO_RELAY + '''
relais.on("rcpt", function(session, rcpt)
  if rcpt.domain == "ours.example" then return relais.accept() end
  if rcpt.domain == "later.example" then return relais.tempfail(450, "4.2.1 Mailbox busy") end
  if rcpt.domain == "gone.example" then return relais.reject(550, "5.1.1 No such user") end
end)''')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<x@ours.example>\r\nRCPT TO:<x@later.example>\r\n"
           b"RCPT TO:<x@gone.example>\r\nRCPT TO:<x@elsewhere.example>\r\n")
    assert d.replies(5) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.1 Mailbox busy\r\n550 5.1.1 No such user\r\n"
                            b"554 5.7.1 Relay access denied\r\n")


def test_session_fields_and_notes(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("connect", function(session) session.notes.count = 0 end)
relais.on("helo", function(session, name) session.notes.count = session.notes.count + 1 end)
relais.on("mail", function(session, sender) session.notes.count = session.notes.count + 1 end)
relais.on("data", function(session, msg)
  msg.notes.from_data = "yes"
  msg:add_header("X-Session", string.format("%s %s %d %s %s %s %d", session.remote_ip, session.helo,
    session.notes.count, tostring(session.tls), tostring(session.auth_user), tostring(session.relay_allowed),
    session.local_port))
end)
relais.on("route", function(msg, rcpt)
  if msg.notes.from_data ~= "yes" then error("notes lost") end
end)''')
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: one\r\n\r\nx\r\n")
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: two\r\n\r\nx\r\n")
    messages = relay.maildir_messages(2)
    headers = sorted(m.split(b"X-Session: ")[1].split(b"\r\n")[0] for m in messages)
    port = str(relay.port).encode()
    assert headers == [b"127.0.0.1 client.test 2 false nil true " + port,
                       b"127.0.0.1 client.test 3 false nil true " + port]


def test_data_hook_edits_headers_and_recipients(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("data", function(session, msg)
  msg:add_header("X-Relayed-By", "relais")
  msg:append_header("X-Last", "appended")
  msg:set_header("Subject", "[tagged] " .. msg:header("Subject"))
  msg:remove_header("X-Internal")
  msg:add_recipient("copy@example.net")
  msg:remove_recipient("drop@example.com")
  msg:add_header("X-Body-Lines", tostring(select(2, msg:body():gsub("\\r\\n", ""))))
  msg:add_header("X-Received-Count", tostring(#msg:headers("Received")))
end)''')
    body = (b"Subject: hello\r\nX-Internal: secret\r\nX-Internal: more\r\nFrom: a@example.org\r\n"
            b"\r\nline 1\r\nline 2\r\n")
    assert send(relay, "a@example.org", ["keep@example.com", "drop@example.com"], body) == {}
    [message] = relay.maildir_messages(1)
    lines = message.split(b"\r\n")
    assert lines[0].startswith(b"Received: ") and lines[1].startswith(b"\tby relay.test")
    assert lines[2:] == [b"X-Received-Count: 0", b"X-Body-Lines: 2", b"X-Relayed-By: relais",
                         b"Subject: [tagged] hello", b"From: a@example.org", b"X-Last: appended",
                         b"", b"line 1", b"line 2", b""]


def test_header_injection_is_refused(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("data", function(session, msg)
  msg:add_header("X-Evil", "a\\r\\nBcc: victim@example.com")
end)''')
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay)
    assert refused.value.smtp_code == 451
    log = relay.wait_log("policy hook failed")
    assert "policy.lua:4: msg:add_header: header X-Evil value must not contain CR, LF or NUL" in log


@pytest.mark.parametrize("verdict,code", [
    ('relais.reject(550, "5.7.0 Content refused")', 550),
    ('relais.tempfail(451, "4.7.0 Scanner busy")', 451),
])
def test_data_refusals(verdict, code, policy_relay):
    relay = policy_relay(RELAY_ALL + f'relais.on("data", function(session, msg) return {verdict} end)')
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay)
    assert refused.value.smtp_code == code
    assert relay.maildir_messages(0, timeout=0.3) == []


def test_discard_answers_250_and_delivers_nothing(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("data", function(session, msg)
  if msg:header("Subject") == "spam" then return relais.discard() end
end)''')
    assert send(relay, body=b"Subject: spam\r\n\r\nx\r\n") == {}
    assert send(relay, body=b"Subject: ham\r\n\r\nx\r\n") == {}
    [message] = relay.maildir_messages(1)
    assert b"Subject: ham" in message
    assert "discarded" in relay.wait_log("discarded by the data hook")


def test_route_to_maildirs_and_bounce_for_refused_recipient(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
local sales = relais.maildir("data/sales")
relais.on("route", function(msg, rcpt)
  if rcpt.domain == "sales.example" then return sales end
  if rcpt.domain == "closed.example" then return relais.reject(550, "5.1.2 Domain closed") end
end)''')
    assert send(relay, "sender@example.org", ["a@sales.example", "b@example.com", "c@closed.example"]) == {}
    [sales] = relay.maildir("sales", 1)
    assert b"Subject: t" in sales
    default = relay.maildir_messages(2)
    bounces = [m for m in default if b"Undelivered Mail" in m]
    [original] = [m for m in default if b"Undelivered Mail" not in m]
    assert b"Subject: t" in original
    [bounce] = bounces
    report = email.message_from_bytes(bounce, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report["To"] == "sender@example.org"
    status = [part for part in report.walk() if part.get_content_type() == "message/delivery-status"][0]
    text = status.as_string()
    assert "Final-Recipient: rfc822; c@closed.example" in text
    assert "Status: 5.1.2" in text
    assert "Diagnostic-Code: smtp; 550 5.1.2 Domain closed" in text


def test_route_refusing_everyone_refuses_the_message(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("route", function(msg, rcpt) return relais.reject(550, "5.1.2 Nowhere to go") end)''')
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (550, b"5.1.2 Nowhere to go")


def test_default_route_from_config(policy_relay):
    relay = policy_relay('relais.config { relay_networks = { "127.0.0.0/8" }, default_route = relais.maildir("data/elsewhere") }')
    send(relay)
    assert len(relay.maildir("elsewhere", 1)) == 1


@pytest.mark.parametrize("body,error", [
    ('error("deliberate failure")', 'policy.lua:4: deliberate failure'),
    ('local t = nil; return t.field', "policy.lua:4: attempt to index a nil value (local 't')"),
    ('while true do end', "policy.lua:4: instruction budget exhausted"),
    ('local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end', "memory limit exceeded"),
    ('return string.rep("x", 1e9)', "memory limit exceeded"),
    ('io.open("/etc/passwd")', "policy.lua:4: attempt to index a nil value (global 'io')"),
    ('os.execute("touch /tmp/relais-pwned")', "policy.lua:4: attempt to call a nil value (field 'execute')"),
    ('dofile("/etc/passwd")', "policy.lua:4: attempt to call a nil value (global 'dofile')"),
    ('return 42', "policy.lua:3: rcpt hook: returned number; return a verdict such as relais.reject(...), or nil"),
    ('return { "garbage" }', "policy.lua:3: rcpt hook: returned table; return a verdict"),
    ('return relais.discard()', "policy.lua:3: rcpt hook: relais.discard() is for the data hook only"),
])
def test_failing_hooks_answer_451_and_the_connection_goes_on(body, error, policy_relay):
    relay = policy_relay(RELAY_ALL + 'relais.config { lua = { max_instructions = 1000000, max_memory = 16777216 } }\n'
                         'relais.on("rcpt", function(session, rcpt)\n'
                         f'  if rcpt.domain == "fail.example" then {body} end\n'
                         'end)')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<x@fail.example>\r\nRSET\r\n")
    assert d.replies(3) == (b"250 2.1.0 Ok\r\n451 4.3.0 Error: local policy failure; try again later\r\n"
                            b"250 2.0.0 Ok\r\n")
    # The next transaction on the same connection succeeds.
    d.start_data()
    d.send(b"Subject: after the failure\r\n\r\nfine\r\n.\r\n")
    assert d.replies(1).startswith(b"250 2.0.0 Ok: queued as ")
    log = relay.wait_log("policy hook failed")
    assert error in log
    assert len(relay.maildir_messages(1)) == 1


def test_a_message_kept_past_its_hook_fails_clearly_in_a_later_one(policy_relay):
    """msg and rcpt last while their hook runs (Relais frees the message
    then, not when Lua's collector gets to it): a script that keeps one and
    uses it in a later call gets an error naming its line, and a 451."""
    relay = policy_relay(RELAY_ALL + """local previous
relais.on("data", function(session, msg)
  if previous then msg:add_header("X-Previous", previous.id) end
  previous = msg
end)""")
    # One connection: its hooks run in one Lua state (each event loop has its own).
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: first\r\n\r\nbody\r\n")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.org", ["b@example.com"], b"Subject: second\r\n\r\nbody\r\n")
    assert refused.value.smtp_code == 451
    assert len(relay.maildir_messages(1)) == 1
    log = relay.wait_log("policy hook failed")
    assert ("policy.lua:4: this object was given to a hook call that has returned; "
            "keep the values you need (msg.id, rcpt.address), not the object") in log


def test_helpers_env_networks_and_files(policy_relay, monkeypatch):
    relay = policy_relay(RELAY_ALL + '''
local lines = relais.read_lines("domains.txt")
local banner = relais.read_file("banner.txt")
relais.on("data", function(session, msg)
  msg:add_header("X-Env", relais.env("RELAIS_TEST_VALUE", "unset") .. "/" .. relais.env("RELAIS_TEST_MISSING", "default"))
  msg:add_header("X-Networks", tostring(relais.in_networks(session.remote_ip, {"10.0.0.0/8", "127.0.0.0/8"})) ..
    tostring(relais.in_networks("2001:db8::1", "2001:db8::/32")) .. tostring(relais.in_networks("192.0.2.1", {"::1/128"})))
  msg:add_header("X-Lines", table.concat(lines, ","))
  msg:add_header("X-Banner", banner)
end)''', files={"domains.txt": "a.example\nb.example\n", "banner.txt": "hello"})
    send(relay)
    [message] = relay.maildir_messages(1)
    assert b"X-Lines: a.example,b.example\r\n" in message
    assert b"X-Banner: hello\r\n" in message
    assert b"X-Networks: truetruefalse\r\n" in message
    assert b"X-Env: unset/default\r\n" in message


def test_policy_log_and_print(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
print("loaded", 42)
relais.on("mail", function(session, sender) relais.log.warn("sender is", sender.address) end)''')
    send(relay)
    assert "loaded 42" in relay.wait_log("sender is a@example.org")


def test_read_file_in_a_hook_is_refused(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("mail", function(session, sender) relais.read_file("policy.lua") end)''')
    with pytest.raises(smtplib.SMTPSenderRefused):
        send(relay)
    assert "relais.read_file can only be called while the policy loads" in relay.wait_log("policy hook failed")


def test_require_modules_beside_the_policy(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
local tag = require("lib.tag")
relais.on("data", function(session, msg) msg:add_header("X-Tag", tag.value) end)''',
                         files={"lib/tag.lua": 'return { value = "from module" }'})
    send(relay)
    [message] = relay.maildir_messages(1)
    assert b"X-Tag: from module\r\n" in message


def test_smtputf8_through_hooks(policy_relay):
    relay = policy_relay(RELAY_ALL + '''
relais.on("rcpt", function(session, rcpt)
  if rcpt.domain == "例子.广告" then rcpt.address = "用户@例子.中国" end
end)''')
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        client.sendmail("josé@exemple.fr", ["用户@例子.广告"], "Subject: utf8\r\n\r\nx\r\n".encode(),
                        mail_options=["SMTPUTF8"])
    [message] = relay.maildir_messages(1)
    assert "for <用户@例子.中国>".encode() in message


def test_built_in_module(policy_relay):
    relay = policy_relay(NO_RELAY + '''
local lists = require("relais.lists")
local ours = lists.set({ "Example.COM" })
relais.on("rcpt", function(session, rcpt)
  if lists.domain_in(rcpt.domain, ours) then return relais.accept() end
end)''')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<x@mx.eu.example.com>\r\nRCPT TO:<x@example.com>\r\n"
           b"RCPT TO:<x@notexample.com>\r\n")
    assert d.replies(4) == b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n"
