"""TLS and authentication towards upstreams, against aiosmtpd with
STARTTLS, implicit TLS and AUTH (PLAIN, LOGIN, XOAUTH2 via an auth handler
that decodes the initial response); bad certificates defer with a clear
reason."""
import base64
import json
import smtplib
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from certificates import make_certificates
from conftest import BINARY, wait_for
from upstream import Recorder, free_port


class AuthRecorder(Recorder):
    """Records what the upstream was told, and checks XOAUTH2 itself."""

    def __init__(self, xoauth2_error=False):
        super().__init__()
        self.logins = []
        self.xoauth2_error = xoauth2_error

    async def auth_XOAUTH2(self, server, args):
        decoded = base64.b64decode(args[1]).decode()
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if part)
        if self.xoauth2_error:
            challenge = base64.b64encode(json.dumps({"status": "401", "schemes": "bearer"}).encode()).decode()
            await server.push(f"334 {challenge}")
            await server._reader.readline()
            return AuthResult(success=False, handled=False)
        self.logins.append(("XOAUTH2", fields["user"], fields["auth"]))
        return AuthResult(success=True, auth_data=fields["user"])


def authenticator(recorder):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.password == b"secret-password":
            recorder.logins.append((mechanism, auth_data.login.decode(), None))
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
    return check


@pytest.fixture
def pki(tmp_path):
    folders = {}

    def make(label, **kwargs):
        folder = tmp_path / label
        folder.mkdir()
        make_certificates(folder, **kwargs)
        folders[label] = folder
        return folder
    return make


def server_context(folder):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def upstream(request):
    controllers = []

    def start(recorder=None, implicit=None, starttls=None, auth=False):
        recorder = recorder or AuthRecorder()
        port = free_port()
        kwargs = {}
        if starttls:
            kwargs.update(tls_context=server_context(starttls), require_starttls=True)
        if auth:
            kwargs.update(authenticator=authenticator(recorder), auth_require_tls=starttls is not None or implicit is not None)
        controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False,
                                ssl_context=server_context(implicit) if implicit else None, **kwargs)
        controller.start()
        controllers.append(controller)
        return port, recorder

    yield start
    for controller in controllers:
        controller.stop()


def policy(smarthost, retry=600):
    return ('relais.config { relay_networks = { "127.0.0.0/8" }, queue = { retry_min = %d, retry_max = %d } }\n'
            'local up = relais.smarthost { %s }\n'
            'relais.on("route", function(msg, rcpt) return up end)\n' % (retry, retry, smarthost))


def send(relay):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: upstream tls\r\n\r\nx\r\n")


def test_starttls_and_auth_plain_with_a_ca_file(policy_relay, upstream, pki):
    certs = pki("up", name="localhost")
    port, recorder = upstream(starttls=certs, auth=True)
    relay = policy_relay(policy(f'name = "up", host = "localhost", port = {port}, ca_file = "{certs}/ca.pem", '
                                'auth = { username = "relay-user", password = "secret-password" }'))
    send(relay)
    assert wait_for(lambda: recorder.messages)
    assert recorder.logins == [("PLAIN", "relay-user", None)]
    assert "secret-password" not in relay.log
    check = subprocess.run([str(BINARY), "check", str(relay.config)], capture_output=True, text=True)
    assert "secret-password" not in check.stdout + check.stderr


def test_auth_login_when_plain_is_not_offered(policy_relay, upstream, pki):
    certs = pki("up", name="localhost")
    port, recorder = upstream(starttls=certs, auth=True)
    relay = policy_relay(policy(f'host = "localhost", port = {port}, ca_file = "{certs}/ca.pem", '
                                'auth = { username = "u", password = "secret-password", mechanism = "LOGIN" }'))
    send(relay)
    assert wait_for(lambda: recorder.messages)
    assert recorder.logins == [("LOGIN", "u", None)]


def test_implicit_tls(policy_relay, upstream, pki):
    certs = pki("up", name="localhost")
    port, recorder = upstream(implicit=certs)
    relay = policy_relay(policy(f'host = "localhost", port = {port}, tls = "implicit", ca_file = "{certs}/ca.pem"'))
    send(relay)
    assert wait_for(lambda: recorder.messages)


def test_xoauth2_calls_the_token_function_per_connection(policy_relay, upstream, pki):
    certs = pki("up", name="localhost")
    port, recorder = upstream(starttls=certs)
    relay = policy_relay(policy(f'host = "localhost", port = {port}, ca_file = "{certs}/ca.pem", '
                                'messages_per_connection = 1, '
                                'auth = { username = "me@example.com", mechanism = "XOAUTH2", token = next_token }')
                         .replace("local up", 'local issued = 0\nlocal function next_token() issued = issued + 1 '
                                               'return "token-" .. issued end\nlocal up'))
    send(relay)
    send(relay)
    assert wait_for(lambda: len(recorder.messages) == 2)
    assert sorted(login[2] for login in recorder.logins) == ["Bearer token-1", "Bearer token-2"]
    assert "token-1" not in relay.log


def test_xoauth2_error_challenge_is_reported(policy_relay, upstream, pki):
    certs = pki("up", name="localhost")
    port, recorder = upstream(recorder=AuthRecorder(xoauth2_error=True), starttls=certs)
    relay = policy_relay(policy(f'host = "localhost", port = {port}, ca_file = "{certs}/ca.pem", '
                                'auth = { username = "me", mechanism = "XOAUTH2", token = function() return "bad" end }'))
    send(relay)
    log = relay.wait_log("result=deferred")
    assert 'XOAUTH2 refused by localhost: {"status": "401", "schemes": "bearer"}' in log


@pytest.mark.parametrize("case,reason", [
    ("wrong-ca", "certificate verification failed: unable to get local issuer certificate"),
    ("expired", "certificate verification failed: certificate has expired"),
    ("name", "certificate verification failed: hostname mismatch"),
])
def test_bad_certificates_defer_with_a_clear_reason(case, reason, policy_relay, upstream, pki):
    certs = pki("up", name="other.test" if case == "name" else "localhost", days=-1 if case == "expired" else 30)
    trusted = pki("other") if case == "wrong-ca" else certs
    port, recorder = upstream(starttls=certs)
    relay = policy_relay(policy(f'name = "up", host = "localhost", port = {port}, ca_file = "{trusted}/ca.pem"'))
    send(relay)
    log = relay.wait_log("result=deferred")
    assert reason in log
    assert recorder.messages == []
    listing = subprocess.run([str(BINARY), "queue", "list", "--spool", str(relay.data_dir / "spool")],
                             capture_output=True, text=True).stdout
    assert reason in listing


def test_missing_starttls_defers_and_opportunistic_goes_plain(policy_relay, upstream):
    port, recorder = upstream()
    relay = policy_relay(policy(f'host = "localhost", port = {port}'))
    send(relay)
    assert "does not offer STARTTLS, which tls = \"starttls\" requires" in relay.wait_log("result=deferred")
    relaxed = policy_relay(policy(f'host = "localhost", port = {port}, tls = "opportunistic"'))
    send(relaxed)
    assert wait_for(lambda: recorder.messages)


def test_credentials_never_go_out_in_plaintext(tmp_path):
    config = tmp_path / "p.lua"
    config.write_text('relais.smarthost { host = "mx.example", tls = "none", auth = { username = "u", password = "p" } }')
    result = subprocess.run([str(BINARY), "check", str(config)], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'credentials over tls = "none" need allow_insecure_auth = true' in result.stderr
