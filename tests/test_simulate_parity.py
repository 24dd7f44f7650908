"""`relais simulate` and a real SMTP session give the same replies: both run
the one session state machine and the one post-DATA acceptance path, for
every example policy and a spread of envelopes."""
import re
import smtplib
import subprocess

import pytest

from conftest import BINARY

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
POLICIES = sorted(p.name for p in EXAMPLES.glob("*.lua")) + ["modular/relay.lua"]
ENVELOPES = [
    ("a@example.com", ["b@example.net"]),
    ("x@internal.example", ["a@archive.example", "b@blocked.example"]),
    ("a@evil.example", ["b@example.net"]),
    ("", ["postmaster@example.net"]),
    ("a@example.com", ["a@closed.example", "x@partner.example", "s@sales.example"]),
    ("a@example.com", ["b@blocked.example"]),
]
MESSAGE = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: parity\r\nX-Internal: yes\r\n\r\nbody\r\n"
# A mail loop: more Received fields than any relay passes on (simulate once skipped this check).
LOOPING = b"Received: from a by b; Tue, 1 Dec 2026 00:00:00 +0000\r\n" * 101 + MESSAGE
# A header section with a line that is neither a field nor a continuation.
MALFORMED = b"Subject: parity\r\nnot a header line\r\n\r\nbody\r\n"
REPLY = re.compile(r"(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?")


def simulated(policy, sender, recipients, text, tmp_path):
    """The (stage, code, enhanced) replies `relais simulate` reports."""
    message = tmp_path / "message.eml"
    message.write_bytes(text)
    args = [str(BINARY), "simulate", str(EXAMPLES / policy), "--from", sender, str(message)]
    for recipient in recipients:
        args += ["--to", recipient]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=30).stdout
    replies = []
    for line in out.splitlines():
        stage = line[:9].strip()
        if stage in ("helo", "mail", "rcpt") and "->" in line:
            replies.append((stage,) + REPLY.match(line.split("-> ", 1)[1]).groups())
        elif stage == "result":
            replies.append(("data",) + REPLY.search(line).groups())
    return replies


def real(port, sender, recipients, message):
    """The same replies from a real SMTP session (smtplib) with the relay."""
    def parse(stage, code, text):
        enhanced = REPLY.match(f"{code} {text.decode()}").group(2)
        return (stage, str(code), enhanced)

    replies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, text = client.ehlo("client.example")
        replies.append(parse("helo", code, text.splitlines()[0]))
        code, text = client.docmd(f"MAIL FROM:<{sender}>")
        replies.append(parse("mail", code, text))
        if code >= 400:
            return replies
        accepted = 0
        for recipient in recipients:
            code, text = client.docmd(f"RCPT TO:<{recipient}>")
            replies.append(parse("rcpt", code, text))
            accepted += code < 400
        if accepted:
            code, _ = client.docmd("DATA")
            assert code == 354
            client.send(message + b".\r\n")
            code, text = client.getreply()
            replies.append(parse("data", code, text))
    return replies


@pytest.mark.parametrize("policy", POLICIES)
def test_simulate_gives_the_replies_of_a_real_session(policy, start_relay, tmp_path):
    relay = start_relay("--greeting-delay", "0", config=EXAMPLES / policy)
    for text in (MESSAGE, LOOPING, MALFORMED):
        for sender, recipients in ENVELOPES:
            expected = real(relay.port, sender, recipients, text)
            assert simulated(policy, sender, recipients, text, tmp_path) == expected, (sender, recipients)
