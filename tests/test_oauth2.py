"""relais.oauth2: XOAUTH2 tokens refreshed over HTTPS from a local token
endpoint started by the test, cached, and a clear deferral when the refresh
token has expired."""
import base64
import json
import smtplib
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from certificates import make_certificates
from conftest import wait_for
from upstream import Recorder, free_port


class TokenEndpoint(BaseHTTPRequestHandler):
    requests = []

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        TokenEndpoint.requests.append(form)
        if form.get("refresh_token") == ["good"] and form.get("grant_type") == ["refresh_token"]:
            status, body = 200, {"access_token": f"fresh-{len(TokenEndpoint.requests)}", "expires_in": 3600,
                                 "token_type": "Bearer"}
        else:
            status, body = 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class XOAuth2Recorder(Recorder):
    def __init__(self):
        super().__init__()
        self.tokens = []

    async def auth_XOAUTH2(self, server, args):
        fields = dict(p.split("=", 1) for p in base64.b64decode(args[1]).decode().split("\x01") if p)
        self.tokens.append(fields["auth"])
        return AuthResult(success=True)


@pytest.fixture
def endpoints(tmp_path):
    make_certificates(tmp_path, name="localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    TokenEndpoint.requests = []
    http = HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    http.socket = context.wrap_socket(http.socket, server_side=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    recorder = XOAuth2Recorder()
    smtp_port = free_port()
    smtp = Controller(recorder, hostname="127.0.0.1", port=smtp_port, decode_data=False, tls_context=context,
                      require_starttls=True)
    smtp.start()
    yield http.server_address[1], smtp_port, tmp_path / "ca.pem", recorder
    smtp.stop()
    http.shutdown()


def policy(token_port, smtp_port, ca, refresh_token):
    return f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 600, retry_max = 600 }} }}
local token = relais.oauth2 {{
  token_url = "https://localhost:{token_port}/token", client_id = "relais-client", client_secret = "client-secret",
  refresh_token = "{refresh_token}", scope = "https://outlook.office.com/SMTP.Send offline_access", ca_file = "{ca}",
}}
local m365 = relais.preset("microsoft365", {{ username = "sender@example.com", token = token,
  host = "localhost", port = {smtp_port}, ca_file = "{ca}", messages_per_connection = 1 }})
relais.on("route", function(msg, rcpt) return m365 end)
'''


def send(relay):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.sendmail("a@example.org", ["b@example.com"], b"Subject: oauth\r\n\r\nx\r\n")


def test_tokens_are_refreshed_over_https_and_cached(endpoints, policy_relay):
    token_port, smtp_port, ca, recorder = endpoints
    relay = policy_relay(policy(token_port, smtp_port, ca, "good"))
    send(relay)
    send(relay)
    assert wait_for(lambda: len(recorder.messages) == 2)
    assert recorder.tokens == ["Bearer fresh-1", "Bearer fresh-1"]   # two connections, one refresh
    [request] = TokenEndpoint.requests
    assert request["client_id"] == ["relais-client"] and request["scope"] == ["https://outlook.office.com/SMTP.Send offline_access"]
    assert "fresh-1" not in relay.log and "client-secret" not in relay.log


def test_an_expired_refresh_token_defers_with_a_clear_error(endpoints, policy_relay):
    token_port, smtp_port, ca, recorder = endpoints
    relay = policy_relay(policy(token_port, smtp_port, ca, "expired"))
    send(relay)
    log = relay.wait_log("result=deferred")
    assert (f"OAuth2 token refresh at https://localhost:{token_port}/token failed: HTTP 400 "
            "(invalid_grant: Token has been expired or revoked.)") in log
    assert recorder.messages == []
    assert wait_for(lambda: len(relay.spool_files()) == 1)  # its file comes with the saved state
