"""Provider presets: each loads, and delivers to a local aiosmtpd stand-in
(host and port overridden, STARTTLS with a test CA) with the username,
mechanism and headers the provider expects; SES password derivation;
provider limits as behaviour."""
import base64
import hashlib
import hmac
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from certificates import make_certificates
from conftest import BINARY, wait_for
from upstream import Recorder, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "providers"
PRESETS = sorted(p.stem for p in EXAMPLES.glob("*.lua"))


def ses_password(secret, region):
    """AWS's documented algorithm (SES developer guide, "Obtaining SMTP credentials")."""
    def sign(key, message):
        return hmac.new(key, message.encode(), hashlib.sha256).digest()
    signature = sign(("AWS4" + secret).encode(), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        signature = sign(signature, part)
    return base64.b64encode(bytes([0x04]) + signature).decode()


def relais(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=30)


def test_every_preset_is_listed_and_has_an_example():
    listing = relais("presets").stdout
    names = [line.split()[0] for line in listing.splitlines()]
    assert names == PRESETS
    assert len(names) >= 18


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_check_shows_the_upstream(name):
    result = relais("check", str(EXAMPLES / f"{name}.lua"))
    assert result.returncode == 0, result.stderr
    assert f"default route  smarthost:{name}(" in result.stdout
    quotas = {"gmail": "per_day=2000", "google_relay": "per_day=10000", "microsoft365": "per_minute=30", "icloud": "per_day=1000"}
    if name in quotas:
        assert f"quota {quotas[name]}" in result.stdout
    shown = relais("presets", name).stdout
    assert "docs      https://" in shown and "checked   2026-" in shown


def test_missing_required_fields_say_what_to_set(tmp_path):
    cases = {
        'relais.preset("sendgrid", {})': 'relais.preset("sendgrid"): set password (your SendGrid API key)',
        'relais.preset("ses", { username = "AKIA" , password = "x" })': 'relais.preset("ses"): set region, e.g. "eu-west-1"',
        'relais.preset("microsoft365", { username = "a@b" })': 'relais.preset("microsoft365"): set token',
        'relais.preset("mailgun", { region = "mars", username = "u", password = "p" })':
            'relais.preset("mailgun"): region must be "us" or "eu"',
        'relais.preset("sendgrid", { password = "p", colour = "red" })': 'relais.preset("sendgrid"): unknown option colour',
        'relais.preset("nosuch", {})': 'relais.preset: unknown preset "nosuch" (presets: brevo, ',
    }
    for text, message in cases.items():
        policy = tmp_path / "p.lua"
        policy.write_text(text)
        result = relais("check", str(policy))
        assert result.returncode != 0
        assert f"p.lua:1: {message}" in result.stderr, result.stderr


def test_ses_password_derivation_matches_the_published_algorithm(tmp_path):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    policy = tmp_path / "p.lua"
    policy.write_text(f'print("PASSWORD", relais.ses_smtp_password("{secret}", "us-east-1"))')
    output = relais("check", str(policy)).stderr
    assert f"PASSWORD {ses_password(secret, 'us-east-1')}" in output


class StandIn(Recorder):
    """Records the login, the mechanism and the password each connection used."""

    def __init__(self):
        super().__init__()
        self.logins = []

    async def auth_XOAUTH2(self, server, args):
        decoded = base64.b64decode(args[1]).decode()
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if part)
        self.logins.append(("XOAUTH2", fields["user"], fields["auth"]))
        return AuthResult(success=True)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standin")
    make_certificates(folder, name="localhost")
    recorder = StandIn()

    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            recorder.logins.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False, tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    yield port, folder / "ca.pem", recorder
    controller.stop()


EXPECTED = {
    # name: (options, expected mechanism, login, password, header)
    "sendgrid": ('password = "SG.key"', "PLAIN", "apikey", "SG.key", None),
    "ses": ('region = "eu-west-1", username = "AKIAID", secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            "PLAIN", "AKIAID", ses_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "eu-west-1"), None),
    "mailgun": ('username = "postmaster@mg.example.com", password = "mailgun-pw"', "PLAIN", "postmaster@mg.example.com", "mailgun-pw", None),
    "postmark": ('password = "pm-token", stream = "broadcasts"', "PLAIN", "pm-token", "pm-token",
                 b"X-PM-Message-Stream: broadcasts\r\n"),
    "gmail": ('username = "me@gmail.com", password = "gmail-app-pw"', "PLAIN", "me@gmail.com", "gmail-app-pw", None),
    "google_relay": ('username = "u@example.com", password = "relay-app-pw"', "PLAIN", "u@example.com", "relay-app-pw", None),
    "microsoft365": ('username = "me@example.com", token = function() return "m365-token" end', "XOAUTH2",
                     "me@example.com", "Bearer m365-token", None),
    "brevo": ('username = "login", password = "brevo-key"', "PLAIN", "login", "brevo-key", None),
    "mailjet": ('username = "apikey1", password = "secret1"', "PLAIN", "apikey1", "secret1", None),
    "sparkpost": ('password = "sp-key"', "LOGIN", "SMTP_Injection", "sp-key", None),
    "resend": ('password = "re_key"', "PLAIN", "resend", "re_key", None),
    "zoho": ('username = "me@example.com", password = "zoho-pw"', "PLAIN", "me@example.com", "zoho-pw", None),
    "fastmail": ('username = "me@fastmail.com", password = "fastmail-pw"', "PLAIN", "me@fastmail.com", "fastmail-pw", None),
    "icloud": ('username = "me@icloud.com", password = "icloud-pw"', "PLAIN", "me@icloud.com", "icloud-pw", None),
    "yahoo": ('username = "me@yahoo.com", password = "yahoo-pw"', "PLAIN", "me@yahoo.com", "yahoo-pw", None),
    "scaleway": ('username = "project-id", password = "scw-secret"', "PLAIN", "project-id", "scw-secret", None),
    "ovh": ('username = "me@example.com", password = "ovh-pw"', "PLAIN", "me@example.com", "ovh-pw", None),
    "proton_bridge": ('username = "me@proton.me", password = "bridge-pw"', "PLAIN", "me@proton.me", "bridge-pw", None),
}


def test_expectations_cover_every_preset():
    assert sorted(EXPECTED) == PRESETS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_delivery_through_each_preset(name, stand_in, policy_relay):
    port, ca, recorder = stand_in
    options, mechanism, login, password, header = EXPECTED[name]
    before = len(recorder.messages)
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 600, retry_max = 600 }} }}
local upstream = relais.preset("{name}", {{ {options}, host = "localhost", port = {port}, tls = "starttls",
  ca_file = "{ca}", verify_cert = true }})
relais.on("route", function(msg, rcpt) return upstream end)
''')
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: preset\r\n\r\nx\r\n")
    assert wait_for(lambda: len(recorder.messages) == before + 1), relay.log
    assert recorder.logins[-1] == (mechanism, login, password)
    content = recorder.messages[-1][2]
    if header:
        assert content.startswith(header)
    assert password not in relay.log


def test_provider_recipient_limit_splits_the_message(stand_in, policy_relay):
    port, ca, recorder = stand_in
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }} }}
local upstream = relais.preset("scaleway", {{ username = "p", password = "s", host = "localhost", port = {port}, ca_file = "{ca}" }})
relais.on("route", function(msg, rcpt) return upstream end)
''')
    before = len(recorder.messages)
    recipients = [f"r{i}@example.com" for i in range(25)]
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", recipients, b"Subject: many\r\n\r\nx\r\n")
    wait_for(lambda: len(recorder.messages) >= before + 3)
    batches = [len(m[1]) for m in recorder.messages[before:]]
    assert sorted(batches) == [5, 10, 10]
    assert relay.wait_spool_empty() == []


def test_provider_size_limit_refuses_at_data(policy_relay):
    relay = policy_relay('''relais.config { relay_networks = { "127.0.0.0/8" } }
local postmark = relais.preset("postmark", { password = "t", max_message_size = 1000 })
relais.on("route", function(msg, rcpt) if rcpt.domain == "big.example" then return postmark end end)
''')
    body = b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 20
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.org", ["x@big.example"], body)
        assert (refused.value.smtp_code, refused.value.smtp_error) == (
            552, b"5.3.4 Error: message too big for postmark (1000 bytes at most)")
        client.sendmail("a@example.org", ["x@small.example"], body)
    assert len(relay.maildir_messages(1)) == 1
