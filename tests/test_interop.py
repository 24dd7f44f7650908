"""Interop with clients nobody here wrote: Python's smtplib and swaks.
What lands in the maildir is byte-identical to what was sent, apart from
the Received header Relais prepends."""
import email
import email.policy
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def split_trace(delivered: bytes) -> tuple[bytes, bytes]:
    """Splits off the Received header (first field, with its folded lines)."""
    assert delivered.startswith(b"Received: ")
    lines = delivered.split(b"\r\n")
    end = 1
    while lines[end].startswith(b"\t"):
        end += 1
    return b"\r\n".join(lines[:end]) + b"\r\n", b"\r\n".join(lines[end:])


def test_smtplib_sendmail_is_byte_identical(relay):
    raw = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: exact\r\n\r\n"
           b".leading dot\r\n..two dots\r\ntrailing spaces   \r\n\ttab\r\n\xc3\xa9 8-bit\r\n")
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        refused = client.sendmail("a@example.org", ["b@example.com"], raw, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    [delivered] = relay.maildir_messages(1)
    trace, content = split_trace(delivered)
    assert content == raw
    assert b"by relay.test (Relais) with ESMTP id " in trace
    assert b"for <b@example.com>" in trace


def test_smtplib_send_message_many_recipients(relay):
    message = EmailMessage()
    message["From"] = "sender@example.org"
    message["To"] = "one@example.com, two@example.com"
    message["Cc"] = "three@example.net"
    message["Subject"] = "several recipients"
    message.set_content("Hello all.\n")
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        assert client.send_message(message) == {}
    [delivered] = relay.maildir_messages(1)
    trace, content = split_trace(delivered)
    assert content == message.as_bytes(policy=email.policy.SMTP)
    assert b" for <" not in trace  # several recipients are not disclosed
    assert relay.wait_spool_empty() == []  # delivered and forgotten


def test_smtplib_smtputf8(relay):
    message = EmailMessage()
    message["From"] = "José <josé@exemple.fr>"
    message["To"] = "用户@例子.广告"
    message["Subject"] = "Grüße"
    message.set_content("Ünïcödé body\n")
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("client.test")
        assert client.has_extn("smtputf8")
        assert client.send_message(message) == {}
    [delivered] = relay.maildir_messages(1)
    trace, content = split_trace(delivered)
    assert content == message.as_bytes(policy=email.policy.SMTPUTF8)
    assert b"with UTF8SMTP id" in trace
    assert "for <用户@例子.广告>".encode() in trace
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße"


def test_smtplib_refusal_is_reported(start_relay):
    relay = start_relay("--relay-network", "192.0.2.0/24", "--greeting-delay", "0")
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@example.org", ["b@example.com"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients["b@example.com"] == (554, b"5.7.1 Relay access denied")


@pytest.mark.parametrize("pipeline", [False, True])
def test_swaks(pipeline, relay, tmp_path):
    body = "Subject: swaks\r\nX-Test: yes\r\n\r\nfrom swaks\r\n"
    # swaks ends the text with CRLF itself before the final dot.
    (tmp_path / "msg.eml").write_bytes(body.encode()[:-2])
    args = ["swaks", "--server", f"127.0.0.1:{relay.port}", "--from", "a@example.org",
            "--to", "b@example.com,c@example.com", "--helo", "swaks.test",
            "--data", str(tmp_path / "msg.eml")]
    if pipeline:
        args.append("--pipeline")
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    [delivered] = relay.maildir_messages(1)
    trace, content = split_trace(delivered)
    assert content == body.encode()
    assert trace.startswith(b"Received: from swaks.test ([127.0.0.1])\r\n\tby relay.test (Relais) with ESMTP id ")


def test_queue_survives_restart(start_relay, tmp_path):
    """Messages left in the spool are delivered on the next start."""
    data = tmp_path / "restart"
    relay = start_relay(data_dir=data)
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: keep\r\n\r\nkeep\r\n")
    relay.maildir_messages(1)
    relay.stop()
    # Put a delivered message back into the spool as if a crash had
    # happened before it was removed: the restart delivers it idempotently.
    [name] = list((data / "mail" / "new").iterdir())
    queue_id = name.name.split(".")[1][1:]
    envelope = ('{"body":null,"clientIP":"127.0.0.1","helo":"x","id":"%s","receivedAt":%s,'
                '"recipients":["b@example.com"],"sender":"a@example.org","smtpUTF8":false}\n'
                % (queue_id, name.name.split(".")[0]))
    (data / "spool" / "queue" / queue_id).write_bytes(envelope.encode() + name.read_bytes())
    second = start_relay(data_dir=data)
    assert len(second.maildir_messages(1)) == 1
    assert second.wait_spool_empty() == []
    assert "resuming queue" in second.log


def test_examples_first_message(relay):
    result = subprocess.run(["python3", str(EXAMPLES / "send_first_message.py"), f"127.0.0.1:{relay.port}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "refused recipients: none" in result.stdout
    [delivered] = relay.maildir_messages(1)
    assert b"Subject: My first message through Relais\r\n" in delivered


def test_swaks_sends_the_example_file(relay):
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--to", "bob@example.com",
                             "--from", "alice@example.org", "--data", str(EXAMPLES / "first-message.eml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout
    [delivered] = relay.maildir_messages(1)
    assert b"this message went through Relais" in delivered
