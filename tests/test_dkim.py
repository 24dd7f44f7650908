"""DKIM signing (RFC 6376, RFC 8463): messages relayed to aiosmtpd and
written to a maildir are verified by dkimpy, nobody here wrote it."""
import json
import re
import smtplib
import subprocess

import dkim
import pytest

from conftest import BINARY, wait_for
from upstream import Upstream, free_port


def keygen(folder, selector, algorithm):
    result = subprocess.run([str(BINARY), "dkim", "keygen", "--domain", "example.org", "--selector", selector,
                             "--algorithm", algorithm, "--out", str(folder / f"{selector}.pem")],
                            capture_output=True, text=True, check=True)
    record = re.search(r'IN TXT "(.*)"', result.stdout).group(1)
    return f"{selector}._domainkey.example.org.", record


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir()
    records = dict([keygen(folder, "s1", "rsa"), keygen(folder, "e1", "ed25519")])
    return folder, records


def verify_all(message: bytes, records) -> list[bool]:
    """Each DKIM-Signature of `message`, verified against `records`."""
    def dnsfunc(name, timeout=5):
        return records.get(name.decode() if isinstance(name, bytes) else name, "").encode()
    count = len(re.findall(rb"^DKIM-Signature:", message, re.MULTILINE | re.IGNORECASE))
    checker = dkim.DKIM(message)

    def verify(index):
        try:
            return checker.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            return False
    return [verify(index) for index in range(count)]


POLICY = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 1, retry_max = 2 }} }}
local rsa = relais.dkim {{ domain = "example.org", selector = "s1", key = "{keys}/s1.pem" }}
local ed = relais.dkim {{ domain = "example.org", selector = "e1", key = "{keys}/e1.pem" }}
local up = relais.smarthost {{ name = "up", host = "127.0.0.1", port = {port}, tls = "none", dkim = {{ rsa, ed }},
  headers = {{ ["X-Provider-Stream"] = "outbound" }} }}
relais.on("data", function(session, msg)
  msg:add_header("X-Added-By-Hook", "yes")
  msg:set_header("Subject", msg:header("Subject") .. " (checked)")
end)
relais.on("route", function(msg, rcpt) if msg.is_bounce then return nil end return up end)
'''

MESSAGES = {
    "dot-stuffed": b"From: a@example.org\r\nTo: b@example.com\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",
    "8-bit": "From: a@example.org\r\nTo: b@example.com\r\nSubject: café\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "\r\nDéjà vu, naïve façade   \r\n\r\n\r\n".encode(),
    "folded": b"From: a@example.org\r\nTo: b@example.com,\r\n  c@example.com\r\nSubject: a long\r\n\tfolded  subject\r\n"
              b"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <x@example.org>\r\n\r\nbody\twith  spaces \r\n",
    "empty body": b"From: a@example.org\r\nTo: b@example.com\r\nSubject: empty\r\n\r\n",
}


@pytest.mark.parametrize("name", MESSAGES)
def test_relayed_messages_carry_valid_rsa_and_ed25519_signatures(policy_relay, keys, name):
    folder, records = keys
    upstream = Upstream().start()
    try:
        relay = policy_relay(POLICY.format(keys=folder, port=upstream.port))
        with smtplib.SMTP("127.0.0.1", relay.port) as client:
            client.sendmail("a@example.org", ["b@example.com"], MESSAGES[name], mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert wait_for(lambda: len(upstream.messages) == 1)
        content = upstream.messages[0][2]
        assert b"X-Added-By-Hook: yes" in content and b"X-Provider-Stream: outbound" in content
        assert b"a=rsa-sha256" in content and b"a=ed25519-sha256" in content
        assert verify_all(content, records) == [True, True]
        # One changed byte in the body breaks both.
        tampered = content.replace(b"\r\n\r\n", b"\r\n\r\nX", 1)
        assert verify_all(tampered, records) == [False, False]
    finally:
        upstream.stop()


def test_the_signature_is_made_once_and_kept_across_retries(policy_relay, keys):
    folder, records = keys
    port = free_port()
    relay = policy_relay(POLICY.format(keys=folder, port=port))
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], MESSAGES["folded"])
    assert wait_for(lambda: relay.spool_files() != [])
    queued = relay.spool_files()[0].read_bytes().split(b"\n", 1)[0]
    stored = json.loads(queued)["dkimSignatures"]
    assert len(stored) == 2
    relay.wait_log("deferred")  # nobody listens yet: the first attempt failed
    upstream = Upstream(port=port).start()
    try:
        assert wait_for(lambda: len(upstream.messages) == 1, timeout=20)
        content = upstream.messages[0][2].decode()
        for field in stored.values():
            assert field in content
        assert verify_all(upstream.messages[0][2], records) == [True, True]
    finally:
        upstream.stop()


def test_dkim_sign_in_the_data_hook_signs_for_the_maildir(policy_relay, keys):
    folder, records = keys
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }} }}
local ed = relais.dkim {{ domain = "example.org", selector = "e1", key = "{folder}/e1.pem", canonicalization = "simple/simple" }}
relais.on("data", function(session, msg) msg:dkim_sign(ed) end)
''')
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], MESSAGES["dot-stuffed"])
    [message] = relay.maildir_messages(1)
    assert b"c=simple/simple" in message
    assert verify_all(message, records) == [True]


@pytest.mark.parametrize("options, error", [
    ('domain = "example.org", selector = "s1", key = "missing.pem"', "policy.lua:1: relais.dkim: key: cannot read the key file"),
    ('domain = "example.org", key = "k.pem"', "policy.lua:1: relais.dkim: selector is required"),
    ('domain = "example.org", selector = "s1", key = "KEYS/e1.pem", algorithm = "rsa-sha256"',
     'policy.lua:1: relais.dkim: algorithm "rsa-sha256" does not match the key (ed25519-sha256)'),
    ('domain = "example.org", selector = "s1", key = "KEYS/s1.pem", headers = { "Subject" }',
     'headers must be a list of field names, with "From" among them'),
])
def test_bad_signers_are_refused_with_file_and_line(tmp_path, keys, options, error):
    folder, _ = keys
    policy = tmp_path / "policy.lua"
    policy.write_text(f"local signer = relais.dkim {{ {options.replace('KEYS', str(folder))} }}\n")
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True, text=True)
    assert result.returncode != 0
    assert error in result.stderr, result.stderr
    assert "PRIVATE KEY" not in result.stderr


def test_keygen_refuses_to_overwrite(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("keep me")
    result = subprocess.run([str(BINARY), "dkim", "keygen", "--domain", "example.org", "--selector", "s1",
                             "--out", str(key)], capture_output=True, text=True)
    assert result.returncode != 0 and key.read_text() == "keep me"
