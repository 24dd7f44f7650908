"""relais check and relais simulate, on the examples and on broken policies."""
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL_EXAMPLES = ["relay.lua", "sender-allowlist.lua", "domain-routing.lua", "header-rewriting.lua",
                "network-reject.lua", "modular/relay.lua", "upstreams.lua", "dnsbl.lua", "rate-limit.lua",
                "customer-api.lua", "direct-delivery.lua"]


def relais(*args, stdin=None, cwd=None):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, input=stdin, timeout=30,
                          cwd=cwd)


@pytest.mark.parametrize("example", ALL_EXAMPLES)
def test_check_loads_every_example(example):
    result = relais("check", str(EXAMPLES / example))
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout
    assert "hooks" in result.stdout and "upstreams" in result.stdout


def test_check_shows_hooks_with_their_place():
    result = relais("check", str(EXAMPLES / "relay.lua"))
    lines = result.stdout.splitlines()
    assert "listen         127.0.0.1:2525" in lines
    assert any(line.startswith("  rcpt") and "relay.lua:49" in line for line in lines)
    assert any(line.startswith("  route") and "relay.lua:64" in line for line in lines)
    assert any("declared" in line and "relais-data/archive" in line for line in lines)
    modular = relais("check", str(EXAMPLES / "modular" / "relay.lua")).stdout
    assert "allowlist.lua:8" in modular and "tagging.lua:2" in modular


BAD_POLICIES = [
    ("relais.on('mail', function(s) return end end)", "policy.lua:1: ')' expected near 'end'"),
    ("relais.config { listn = {} }", 'policy.lua:1: relais.config: unknown key "listn"'),
    ('relais.config {\n  listen = { "nowhere" } }', "policy.lua:1: relais.config: listen address \"nowhere\" is not HOST:PORT"),
    ('relais.config { relay_networks = { "10.0.0.0/33" } }', "policy.lua:1: relais.config: relay_networks: \"10.0.0.0/33\""),
    ('relais.config { tls = { cert = "c.pem" } }', "policy.lua:1: relais.config: tls needs cert and key (PEM files)"),
    ("relais.config {\n  queue = { memory = 0 } }", "policy.lua:1: relais.config: queue.memory must be a positive integer"),
    ("\n\nrelais.on('recieve', function() end)", "policy.lua:3: relais.on: unknown stage recieve"),
    ("relais.on('rcpt', 42)", "policy.lua:1: relais.on(\"rcpt\", ...) expects a function"),
    ("require('missing.module')", "policy.lua:1: require: module missing.module not found"),
    ("require('../escape')", "policy.lua:1: require: bad module name"),
    ("local x = nil\nx.y = 1", "policy.lua:2: attempt to index a nil value (local 'x')"),
    ("relais.read_file('nope.txt')", "policy.lua:1: relais.read_file: cannot read"),
    ("relais.reject(250)", "policy.lua:1: relais.reject: code 250 is not in 500-599"),
    ("io.open('/etc/passwd')", "policy.lua:1: attempt to index a nil value (global 'io')"),
    ("os.execute('true')", "policy.lua:1: attempt to call a nil value (field 'execute')"),
    ("load(string.dump(print))", "policy.lua:1: attempt to call a nil value (field 'dump')"),
    ("while true do end", "policy.lua:1: instruction budget exhausted"),
]


@pytest.mark.parametrize("text,error", BAD_POLICIES)
def test_check_reports_bad_policies_with_file_and_line(text, error, tmp_path):
    policy = tmp_path / "policy.lua"
    policy.write_text(text)
    result = relais("check", str(policy))
    assert result.returncode != 0
    assert error in result.stderr, result.stderr


def test_check_missing_file():
    result = relais("check", "/nonexistent/policy.lua")
    assert result.returncode != 0
    assert "/nonexistent/policy.lua: cannot read the file" in result.stderr


def test_run_refuses_a_broken_policy(tmp_path):
    policy = tmp_path / "policy.lua"
    policy.write_text("relais.config { listn = {} }")
    result = relais("run", str(policy), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"))
    assert result.returncode != 0
    assert 'policy.lua:1: relais.config: unknown key "listn"' in result.stderr


def test_simulate_shows_every_stage():
    result = relais("simulate", str(EXAMPLES / "relay.lua"), "--from", "x@internal.example",
                    "--to", "a@archive.example", "--to", "b@blocked.example", "--to", "c@example.com",
                    stdin="Subject: hi\nX-Internal: secret\n\nbody\n", cwd=EXAMPLES)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sender rewritten to <x@example.com>" in out
    assert "<b@blocked.example>" in out and "550 5.7.1 Recipient domain not served here" in out
    assert "headers (changed by the data hook)" in out
    assert "  X-Relayed-By: relais" in out and "X-Internal" not in out
    assert "relais-data/archive" in out.split("route     <a@archive.example>")[1].splitlines()[0]
    assert "result    queued for 2 recipient(s)" in out


def test_simulate_reads_a_message_file_and_stdin(tmp_path):
    message = tmp_path / "m.eml"
    message.write_text("Subject: file\n\nx\n")
    from_file = relais("simulate", str(EXAMPLES / "header-rewriting.lua"), "--from", "a@example.com",
                       "--to", "b@example.net", str(message))
    assert "Subject: [external] file" in from_file.stdout
    from_stdin = relais("simulate", str(EXAMPLES / "header-rewriting.lua"), "--from", "a@example.com",
                        "--to", "b@example.net", "-", stdin="Subject: piped\n\nx\n")
    assert "Subject: [external] piped" in from_stdin.stdout


@pytest.mark.parametrize("args,expected", [
    (["network-reject.lua", "--ip", "192.0.2.5"], "554 5.7.1 Your network is not welcome here (connection closed)"),
    (["network-reject.lua", "--ip", "10.66.1.1"], "450 4.7.1 Your network is being checked; try later"),
    (["sender-allowlist.lua", "--from", "a@evil.example"], "553 5.7.1 Sender domain evil.example may not send"),
    (["relay.lua", "--ip", "203.0.113.9", "--to", "z@example.net"], "554 5.7.1 Relay access denied"),
    (["domain-routing.lua", "--to", "a@closed.example"], "refused: 550 5.1.2 closed.example no longer receives mail"),
])
def test_simulate_exits_non_zero_when_refused(args, expected):
    name, rest = args[0], args[1:]
    if "--from" not in rest:
        rest += ["--from", "a@example.com"]
    if "--to" not in rest:
        rest += ["--to", "b@example.net"]
    result = relais("simulate", str(EXAMPLES / name), *rest, cwd=EXAMPLES)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout


def test_simulate_auth_user_may_relay():
    result = relais("simulate", str(EXAMPLES / "relay.lua"), "--ip", "203.0.113.9", "--auth", "alice",
                    "--from", "a@example.com", "--to", "z@example.net", cwd=EXAMPLES)
    assert result.returncode == 0
    assert "accepted (relay allowed)" in result.stdout


def test_simulate_routes_per_domain():
    result = relais("simulate", str(EXAMPLES / "domain-routing.lua"), "--from", "a@example.com",
                    "--to", "x@sales.example", "--to", "y@unknown.example", cwd=EXAMPLES)
    assert "relais-data/sales" in result.stdout
    assert "relais-data/other" in result.stdout


def test_simulate_shows_failover_routes():
    result = relais("simulate", str(EXAMPLES / "upstreams.lua"), "--from", "a@example.com",
                    "--to", "x@partner.example", "--to", "y@elsewhere.example")
    assert result.returncode == 0, result.stderr
    assert "route     <x@partner.example>          -> smarthost:partners(10.0.1.25:2525) -> smarthost:primary(10.0.0.25:25)" in result.stdout
    assert "route     <y@elsewhere.example>        -> smarthost:primary(10.0.0.25:25) -> smarthost:secondary(10.0.0.26:25)" in result.stdout
    check = relais("check", str(EXAMPLES / "upstreams.lua")).stdout
    assert "default route  smarthost:primary(10.0.0.25:25) -> smarthost:secondary(10.0.0.26:25)" in check
    assert "declared       smarthost:partners(10.0.1.25:2525)" in check


def test_definitions_file_declares_the_whole_api(tmp_path):
    policy = tmp_path / "policy.lua"
    policy.write_text("local names = {} for k in pairs(relais) do names[#names + 1] = k end "
                      "table.sort(names) print('API', table.concat(names, ','))")
    result = relais("check", str(policy))
    api = result.stderr.split("API ")[1].split()[0].split(",")
    definitions = (EXAMPLES.parent / "types" / "relais.lua").read_text()
    for name in api:
        assert f"function relais.{name}(" in definitions or f"---@field {name} " in definitions, name


def test_examples_serve_real_mail(start_relay, tmp_path):
    import smtplib
    relay = start_relay(config=EXAMPLES / "modular" / "relay.lua")
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.ehlo("modular.test")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("a@evil.example", ["b@example.net"], b"Subject: x\r\n\r\nx\r\n")
        client.rset()
        client.sendmail("a@example.com", ["b@example.net"], b"Subject: x\r\n\r\nx\r\n")
    [message] = relay.maildir_messages(1)
    assert b"X-Relayed-By: relais (modular.test)\r\n" in message
