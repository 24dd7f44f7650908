"""Inbound AUTH (RFC 4954): PLAIN and LOGIN, decided by the auth hook,
offered only when a hook exists, failures slowed down and cut off, and
passwords never logged."""
import smtplib
import subprocess
import time

import pytest

from conftest import Dialog

AUTH_POLICY = '''relais.config { relay_networks = { "192.0.2.0/24" }, greeting_delay = 0 }
local users = { alice = "wonderland", bob = "builder" }
relais.on("auth", function(session, creds)
  return users[creds.username] ~= nil and users[creds.username] == creds.password
end)
relais.on("data", function(session, msg)
  msg:add_header("X-Auth-User", tostring(session.auth_user))
end)
'''


def test_no_auth_hook_no_auth(relay):
    d = Dialog(relay.port)
    assert b"AUTH" not in d.ehlo()
    d.send(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n")
    assert d.replies(1) == b"502 5.5.1 Error: command not available\r\n"


def test_login_lets_a_client_relay(policy_relay):
    relay = policy_relay(AUTH_POLICY)
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        assert client.has_extn("auth") and "PLAIN" in client.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["b@example.com"], b"Subject: before\r\n\r\nx\r\n")
        client.rset()
        client.login("alice", "wonderland")
        client.sendmail("alice@example.org", ["b@example.com"], b"Subject: after\r\n\r\nx\r\n",
                        mail_options=["AUTH=<>"])
    [message] = relay.maildir_messages(1)
    assert b"X-Auth-User: alice\r\n" in message
    assert b" with ESMTPA id " in message
    assert "wonderland" not in relay.log
    assert "user=alice" in relay.log


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_auth(mechanism, policy_relay):
    relay = policy_relay(AUTH_POLICY)
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--auth", mechanism,
                             "--auth-user", "bob", "--auth-password", "builder", "--from", "bob@example.org",
                             "--to", "c@example.com"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout
    assert "235 2.7.0 Authentication successful" in result.stdout
    [message] = relay.maildir_messages(1)
    assert b"X-Auth-User: bob\r\n" in message
    assert "builder" not in relay.log


def test_failures_are_slowed_down_and_cut_off(policy_relay):
    relay = policy_relay(AUTH_POLICY)
    d = Dialog(relay.port)
    d.ehlo()
    start = time.time()
    # alice / wrong, three times; the third closes the connection.
    d.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
    assert d.replies(1) == b"535 5.7.8 Authentication credentials invalid\r\n"
    # One at a time: a client outside the relay networks may not pipeline AUTH.
    d.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
    assert d.replies(1) == b"535 5.7.8 Authentication credentials invalid\r\n"
    d.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
    assert d.replies(1) == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert d.replies(1) == b"421 4.7.0 Error: too many failed authentications; closing connection\r\n"
    assert time.time() - start >= 2.5   # paused 1 s after the first failure, 2 s after the second
    assert d.closed()
    assert "wrong" not in relay.log
    assert relay.log.count("authentication failed") == 3


def test_auth_exchange_errors(policy_relay):
    relay = policy_relay(AUTH_POLICY)
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"AUTH CRAM-MD5\r\n")
    assert d.replies(1) == b"504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN\r\n"
    d.send(b"AUTH PLAIN\r\n")
    assert d.replies(1) == b"334 \r\n"
    d.send(b"not base64!\r\n")
    assert d.replies(1) == b"501 5.5.2 Error: invalid base64 in the authentication exchange\r\n"
    d.send(b"AUTH LOGIN\r\n")
    assert d.replies(1) == b"334 VXNlcm5hbWU6\r\n"
    d.send(b"*\r\n")
    assert d.replies(1) == b"501 5.0.0 Authentication cancelled\r\n"


def test_auth_hook_errors_are_temporary(policy_relay):
    relay = policy_relay('''relais.config { greeting_delay = 0 }
relais.on("auth", function(session, creds) error("directory down") end)''')
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n")
    assert d.replies(1) == b"451 4.3.0 Error: local policy failure; try again later\r\n"
    assert "wonderland" not in relay.log and "directory down" in relay.log
