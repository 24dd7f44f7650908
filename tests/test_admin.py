"""The admin HTTP endpoint: /metrics parsed by prometheus_client's own
exposition parser, /healthz and /readyz, the queue and upstream JSON API
against a relay holding mail for a dead upstream, the bearer token, and
JSON log lines."""
import json
import smtplib
import subprocess
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import BINARY, wait_for
from upstream import Upstream, free_port

TOKEN = "t0ken-for-tests"


def admin_policy(extra="", token=TOKEN, port=None):
    port = port or free_port()
    token_field = f', token = "{token}"' if token else ""
    return port, f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, admin = {{ listen = "127.0.0.1:{port}"{token_field} }},
  queue = {{ retry_min = 300, retry_max = 600 }} }}
relais.on("rcpt", function(session, rcpt)
  if rcpt.domain == "refused.example" then return relais.reject(550, "5.1.1 no such user") end
end)
{extra}'''


def call(port, path, method="GET", token=TOKEN):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(port):
    status, text = call(port, "/metrics")
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def send(relay, count, recipients=("b@example.com",)):
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        for number in range(count):
            client.sendmail("a@example.org", list(recipients), f"Subject: m{number}\r\n\r\nbody\r\n".encode())


def test_metrics_count_exactly_what_was_sent(policy_relay):
    port, policy = admin_policy()
    relay = policy_relay(policy)
    relay.wait_log("admin endpoint listening")
    send(relay, 5)
    try:
        send(relay, 1, recipients=["x@refused.example"])
    except smtplib.SMTPRecipientsRefused:
        pass
    assert wait_for(lambda: len(relay.maildir_messages()) == 5)
    assert wait_for(lambda: samples(port).get(("relais_delivery_attempts_total",
                                               (("result", "delivered"), ("upstream", "maildir")))) == 5)
    values = samples(port)
    assert values[("relais_messages_accepted_total", ())] == 5
    assert values[("relais_messages_refused_total", (("class", "5xx"), ("stage", "rcpt")))] == 1
    assert values[("relais_connections_total", ())] == 2
    assert values[("relais_connections_open", ())] == 0
    # Routed only to the maildir: delivered before the 250, never spooled.
    assert values[("relais_spool_flushed_files_total", ())] == 0
    assert values[("relais_policy_generation", ())] == 1
    assert values[("relais_queue_messages", ())] == 0
    assert values[("relais_hook_calls_total", (("stage", "rcpt"),))] == 6
    assert values[("relais_received_bytes_total", ())] > 5 * 20


def test_queue_and_upstream_api_with_a_dead_upstream(policy_relay):
    dead = free_port()
    port, policy = admin_policy(f'''local dead = relais.smarthost {{ name = "dead", host = "127.0.0.1", port = {dead}, tls = "none", timeout = 2 }}
relais.on("route", function(msg, rcpt) if not msg.is_bounce then return dead end end)''')
    relay = policy_relay(policy)
    send(relay, 3)
    assert wait_for(lambda: relay.log.count("result=deferred") == 3)
    status, body = call(port, "/api/queue?upstream=dead&limit=2")
    page = json.loads(body)
    assert status == 200 and page["total"] == 3 and len(page["messages"]) == 2
    first = page["messages"][0]
    assert first["recipients"][0]["status"] == "pending" and first["recipients"][0]["upstreams"] == ["dead"]
    assert "cannot connect" in first["recipients"][0]["last_result"]
    assert json.loads(call(port, "/api/queue?upstream=other")[1])["total"] == 0
    status, body = call(port, f"/api/queue/{first['id']}")
    assert status == 200 and json.loads(body)["sender"] == "a@example.org"
    assert call(port, "/api/queue/NOSUCHID")[0] == 404
    assert json.loads(call(port, f"/api/queue/{first['id']}", method="DELETE")[1]) == {"deleted": first["id"]}
    assert json.loads(call(port, "/api/queue")[1])["total"] == 2
    assert json.loads(call(port, "/api/queue/flush?upstream=other", method="POST")[1]) == {"flushed": 0}
    assert json.loads(call(port, "/api/queue/flush?upstream=dead", method="POST")[1]) == {"flushed": 2}
    [upstream] = json.loads(call(port, "/api/upstreams")[1])
    assert upstream["name"] == "dead" and "cannot connect" in upstream["last_failure"]
    assert json.loads(call(port, "/api/upstreams/dead/pause", method="POST")[1])["state"] == "paused"
    assert json.loads(call(port, "/api/upstreams")[1])[0]["state"] == "paused by an operator"
    import signal
    offset = len(relay.log)
    relay.process.send_signal(signal.SIGHUP)
    relay.wait_log("policy reloaded", after=offset)
    assert json.loads(call(port, "/api/upstreams")[1])[0]["state"] == "paused by an operator"
    values = samples(port)
    assert values[("relais_queue_messages", ())] == 2
    assert values[("relais_upstream_state", (("state", "paused"), ("upstream", "dead")))] == 1
    call(port, "/api/upstreams/dead/resume", method="POST")
    assert json.loads(call(port, "/api/upstreams")[1])[0]["state"] != "paused by an operator"
    second = json.loads(call(port, "/api/queue")[1])["messages"][0]["id"]
    assert json.loads(call(port, f"/api/queue/{second}/bounce", method="POST")[1]) == {"bounced": second}
    [bounce] = relay.maildir_messages(1)
    assert b"Action: failed" in bounce and b"bounced by an operator" in bounce
    assert wait_for(lambda: json.loads(call(port, "/api/queue")[1])["total"] == 1)
    assert call(port, "/api/queue/NOSUCHID/bounce", method="POST")[0] == 404
    # relais queue talks to the running relay through the same API when the policy names it.
    remaining = json.loads(call(port, "/api/queue")[1])["messages"][0]["id"]
    queue = lambda *args: subprocess.run([str(BINARY), "queue", *args, "--config", str(relay.config)],
                                         capture_output=True, text=True, timeout=30, cwd=relay.data_dir.parent)
    assert queue("flush").stdout.strip() == f"ok 1 message(s) due now (via http://127.0.0.1:{port})"
    assert queue("delete", remaining).stdout.strip() == f"ok deleted {remaining} (via http://127.0.0.1:{port})"
    assert queue("delete", remaining).returncode != 0
    assert json.loads(call(port, "/api/queue")[1])["total"] == 0


def test_token_is_required_except_for_healthz(policy_relay):
    port, policy = admin_policy()
    relay = policy_relay(policy)
    relay.wait_log("admin endpoint listening")
    assert call(port, "/healthz", token=None) == (200, "ok\n")
    for path in ("/metrics", "/readyz", "/api/queue", "/api/upstreams"):
        assert call(port, path, token=None)[0] == 401
        assert call(port, path, token="wrong")[0] == 401
    assert call(port, "/readyz") == (200, "ready\n")
    assert call(port, "/nowhere")[0] == 404
    assert TOKEN not in relay.log


def test_non_loopback_admin_needs_a_token(tmp_path):
    policy = tmp_path / "policy.lua"
    policy.write_text('relais.config { admin = { listen = "0.0.0.0:8025" } }')
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "policy.lua:1: relais.config: admin.listen 0.0.0.0:8025 is not a loopback address: set admin.token too" in result.stderr


def test_json_logs_parse_line_by_line(tmp_path):
    policy = tmp_path / "json.lua"
    policy.write_text('relais.config { relay_networks = { "127.0.0.0/8" }, log_format = "json" }')
    data = tmp_path / "data"
    data.mkdir()
    log = open(tmp_path / "json.log", "wb")
    port = free_port()
    process = subprocess.Popen([str(BINARY), "run", str(policy), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data)],
                               stdout=log, stderr=log)
    try:
        assert wait_for(lambda: b"listening" in (tmp_path / "json.log").read_bytes())
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("a@example.org", ["b@example.com"], b"Subject: json\r\n\r\nbody\r\n")
        assert wait_for(lambda: b'"message":"delivered"' in (tmp_path / "json.log").read_bytes())
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = [json.loads(line) for line in (tmp_path / "json.log").read_text().splitlines()]
    assert all({"timestamp", "level", "message"} <= line.keys() for line in lines)
    queued = [line for line in lines if line["message"] == "queued"]
    assert len(queued) == 1 and queued[0]["from"] == "<a@example.org>" and queued[0]["recipients"] == "1"
    assert lines[-1]["message"] == "stopped"


def test_status_page_in_chromium_shows_the_api_numbers(policy_relay, tmp_path):
    import re
    import shutil
    import pytest
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/setup installs it)")
    dead = free_port()
    port, policy = admin_policy(f'''local dead = relais.smarthost {{ name = "dead", host = "127.0.0.1", port = {dead}, tls = "none", timeout = 2 }}
relais.on("route", function(msg, rcpt)
  if rcpt.domain == "remote.example" then return dead end
end)''')
    relay = policy_relay(policy)
    send(relay, 3)
    send(relay, 2, recipients=["r@remote.example"])
    # A maildir file is in new/ a moment before its delivery is counted: wait for the counts the page shows.
    counted = lambda key: sum(m[key] for m in json.loads(call(port, "/api/activity")[1])["minutes"])
    assert wait_for(lambda: relay.log.count("result=deferred") == 2 and len(relay.maildir_messages()) == 3
                    and counted("delivered") == 3 and counted("deferred") == 2)
    url = f"http://127.0.0.1:{port}/#token={TOKEN}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
             "--virtual-time-budget=10000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-loaded="yes"' in dom, dom[-2000:]
    figure = lambda name: int(re.search(rf'id="{name}">(\d+)<', dom).group(1))
    queue = json.loads(call(port, "/api/queue")[1])
    activity = json.loads(call(port, "/api/activity")[1])
    assert figure("queued") == queue["total"] == 2
    assert figure("accepted") == sum(m["accepted"] for m in activity["minutes"]) == 5
    assert figure("delivered") == 3
    assert figure("problems") == 2
    dead_row = re.search(r'<tr data-upstream="dead">(.*?)</tr>', dom).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", dead_row)
    assert cells[0] == "dead" and cells[3] == "2"          # deferred
    assert "cannot connect" in dom                          # the latest failures list the reply
    assert 'data-series="queued" data-value="2"' in dom     # the queue depth in the chart
    assert TOKEN not in dom
    screenshot = tmp_path / "status.png"
    subprocess.run([chromium, *flags, f"--screenshot={screenshot}", "--window-size=1000,900", url],
                   capture_output=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000


def test_systemd_unit_verifies_and_the_relay_notifies(tmp_path):
    import os
    import shutil
    import signal
    import socket
    import pytest
    from pathlib import Path
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (Path(__file__).resolve().parent.parent / "contrib" / "relais.service").read_text()
    verified = tmp_path / "relais.service"
    verified.write_text(unit.replace("/usr/local/bin/relais", str(BINARY)))
    result = subprocess.run(["systemd-analyze", "verify", str(verified)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    for option in ("ProtectSystem=strict", "NoNewPrivileges=yes", "DynamicUser=yes", "StateDirectory=relais"):
        assert option in unit

    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(20)
    port = free_port()
    policy = tmp_path / "policy.lua"
    policy.write_text('relais.config { relay_networks = { "127.0.0.0/8" } }')
    process = subprocess.Popen([str(BINARY), "run", str(policy), "--listen", f"127.0.0.1:{port}", "--data-dir",
                                str(tmp_path / "data")], env={**os.environ, "NOTIFY_SOCKET": str(notify)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert listener.recv(100) == b"READY=1"
        socket.create_connection(("127.0.0.1", port)).close()
        process.send_signal(signal.SIGHUP)
        assert listener.recv(100) == b"RELOADING=1"
        assert listener.recv(100) == b"READY=1"
        process.send_signal(signal.SIGTERM)
        assert listener.recv(100) == b"STOPPING=1"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()


def test_grafana_dashboard_uses_only_exposed_metrics(policy_relay):
    import re
    from pathlib import Path
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "contrib" / "grafana-dashboard.json").read_text())
    used = {re.sub(r"_(bucket|sum|count)$", "", name)
            for panel in dashboard["panels"] for target in panel["targets"] for name in re.findall(r"relais_\w+", target["expr"])}
    dead = free_port()
    port, policy = admin_policy(f'''local dead = relais.smarthost {{ name = "dead", host = "127.0.0.1", port = {dead}, tls = "none",
  timeout = 2, quota = {{ per_day = 100 }} }}
relais.on("route", function(msg, rcpt) if rcpt.domain == "remote.example" then return dead end end)''')
    relay = policy_relay(policy)
    send(relay, 1)
    send(relay, 1, recipients=["r@remote.example"])
    try:
        send(relay, 1, recipients=["x@refused.example"])
    except smtplib.SMTPRecipientsRefused:
        pass
    assert wait_for(lambda: relay.log.count("result=deferred") == 1)
    status, text = call(port, "/metrics")
    exposed = {family.name for family in text_string_to_metric_families(text)}
    # Counters are named without _total in the parser's families.
    exposed |= {name + "_total" for name in exposed}
    only_after_an_event = {"relais_connections_refused_total"}
    assert used - exposed - only_after_an_event == set()
    assert len(used) >= 15


def test_a_flush_right_after_a_restart_reaches_the_whole_queue(policy_relay, tmp_path):
    """The relay listens before it has read a long queue back; a flush asked
    for meanwhile still makes every queued message due, not only those read
    back so far (the others would wait for their hour-long retry)."""
    upstream_port, messages = free_port(), 3000
    port, policy = admin_policy(f'''local sink = relais.smarthost {{ name = "sink", host = "127.0.0.1", port = {upstream_port},
  tls = "none", health = {{ failures = 1, down_min = 3600, down_max = 3600 }} }}
relais.on("route", function(msg, rcpt) return sink end)''')
    policy = policy.replace("retry_min = 300, retry_max = 600", "retry_min = 3600, retry_max = 3600")
    relay = policy_relay(policy)
    subprocess.run(["smtp-source", "-s", "10", "-m", str(messages), "-l", "512", "-d", "-f", "a@example.org",
                    "-t", "b@example.com", f"127.0.0.1:{relay.port}"], check=True, timeout=120)
    assert wait_for(lambda: len(relay.spool_files()) == messages, timeout=60)
    relay.stop()
    upstream = Upstream(port=upstream_port).start()
    try:
        relay.start()
        while True:  # as soon as the admin endpoint answers
            try:
                call(port, "/api/queue/flush", method="POST")
                break
            except urllib.error.URLError:
                time.sleep(0.005)
        assert wait_for(lambda: len(upstream.messages) == messages, timeout=60), len(upstream.messages)
        assert relay.wait_spool_empty(timeout=30) == []
    finally:
        upstream.stop()
