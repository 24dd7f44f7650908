"""Hooks that call DNS, HTTP and Redis: real dnsmasq, redis-server and an
HTTP server; the event loop keeps serving while hooks wait."""
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import BINARY, wait_for
from services import DNSServer, HTTPServer, RedisServer, free_port


@pytest.fixture
def http_server():
    server = HTTPServer()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def start(**kwargs):
        server = RedisServer(tmp_path / f"redis{len(servers)}", **kwargs)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def dns_server(tmp_path):
    server = DNSServer(tmp_path / "dns", [
        "address=/host.example/192.0.2.10",
        "address=/host.example/2001:db8::10",
        "mx-host=example.org,mx2.example.org,20",
        "mx-host=example.org,mx1.example.org,10",
        "txt-record=example.org,v=spf1 -all",
        "ptr-record=10.2.0.192.in-addr.arpa,host.example",
        "cname=alias.example,host.example",
        "address=/2.0.0.127.bl.example/127.0.0.2",
        "address=/1.0.0.127.bl.example/127.0.0.2",
    ], nxdomain=["bl.example", "missing.example"])
    yield server
    server.stop()


RCPT_ANSWERS = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, {config} }}
{prelude}
relais.on("rcpt", function(session, rcpt)
  local text = (function() {body} end)()
  return relais.accept(tostring(text))
end)
'''


def rcpt_text(relay, recipient="b@example.com") -> str:
    """The text of the 250 the rcpt hook answered with."""
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("a@example.org")
        code, text = client.rcpt(recipient)
        assert code == 250, (code, text, [line for line in relay.log.splitlines() if "error" in line][-3:])
        return text.decode().removeprefix("2.1.5 ")


def start_answering(policy_relay, body, config="", prelude=""):
    return policy_relay(RCPT_ANSWERS.format(body=body, config=config, prelude=prelude))


def test_dns_lookups_by_type(policy_relay, dns_server):
    relay = start_answering(policy_relay, '''
      local out = {}
      local a = relais.dns.lookup("host.example", "A")
      out[#out + 1] = "A=" .. table.concat(a, ",")
      out[#out + 1] = "AAAA=" .. table.concat(relais.dns.lookup("host.example", "AAAA"), ",")
      local mx = relais.dns.lookup("example.org", "MX")
      out[#out + 1] = "MX=" .. mx[1].preference .. ":" .. mx[1].host .. "," .. mx[2].preference .. ":" .. mx[2].host
      out[#out + 1] = "TXT=" .. relais.dns.lookup("example.org", "TXT")[1]
      out[#out + 1] = "PTR=" .. relais.dns.lookup("192.0.2.10", "PTR")[1]
      out[#out + 1] = "CNAME=" .. relais.dns.lookup("alias.example", "CNAME")[1]
      local none, err = relais.dns.lookup("nothing.missing.example", "A")
      out[#out + 1] = "NX=" .. tostring(none) .. "/" .. err
      return table.concat(out, " ")''', config=f'dns = {{ servers = {{ "{dns_server.address}" }}, timeout = 2 }}')
    assert rcpt_text(relay) == ("A=192.0.2.10 AAAA=2001:db8::10 MX=10:mx1.example.org,20:mx2.example.org "
                                "TXT=v=spf1 -all PTR=host.example CNAME=host.example NX=nil/NXDOMAIN")


def test_large_answers_come_over_tcp(policy_relay, tmp_path):
    """An answer past the 1232-byte EDNS0 size is truncated over UDP and asked again over TCP."""
    strings = ",".join(chr(97 + i % 26) * 250 for i in range(12))
    server = DNSServer(tmp_path / "large", [f"txt-record=big.example,{strings}"])
    try:
        relay = start_answering(policy_relay, '''
          local txt, err = relais.dns.lookup("big.example", "TXT")
          return txt and (txt[1] and #txt[1] or "no record") or err''', config=f'dns = {{ servers = {{ "{server.address}" }} }}')
        assert rcpt_text(relay) == "3000"
    finally:
        server.stop()


def test_dns_cache_answers_without_asking_again(policy_relay, dns_server):
    relay = start_answering(policy_relay, '''
      return table.concat(relais.dns.lookup("host.example", "A"), ",")''',
                            config=f'dns = {{ servers = {{ "{dns_server.address}" }} }}')
    assert rcpt_text(relay) == "192.0.2.10"
    dns_server.stop()
    # The answer is cached for its TTL: no server is needed any more.
    assert rcpt_text(relay) == "192.0.2.10"


def test_dns_timeout_and_servfail(policy_relay, tmp_path):
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    refusing = DNSServer(tmp_path / "refusing", [])
    try:
        relay = start_answering(policy_relay, f'''
          local _, first = relais.dns.lookup("a.example", "A")
          return first''', config=f'dns = {{ servers = {{ "127.0.0.1:{port}" }}, timeout = 0.5 }}')
        started = time.time()
        assert rcpt_text(relay) == "timeout"
        assert time.time() - started < 3
        relay = start_answering(policy_relay, '''
          local _, err = relais.dns.lookup("unknown.example", "A")
          return err''', config=f'dns = {{ servers = {{ "{refusing.address}" }} }}')
        assert rcpt_text(relay) == "SERVFAIL"
    finally:
        silent.close()
        refusing.stop()


def test_dnsbl_helper_and_example(policy_relay, dns_server):
    relay = start_answering(policy_relay, '''
      local listed, code = relais.dnsbl("127.0.0.2", { "missing.example", "bl.example" })
      local clean, err = relais.dnsbl("127.0.0.3", "bl.example")
      return tostring(listed) .. "/" .. tostring(code) .. " " .. tostring(clean) .. "/" .. tostring(err)''',
                            config=f'dns = {{ servers = {{ "{dns_server.address}" }} }}')
    assert rcpt_text(relay) == "bl.example/127.0.0.2 nil/nil"


def test_http_request_fields(policy_relay, http_server):
    relay = start_answering(policy_relay, f'''
      local res = relais.http.request {{ method = "POST", url = "{http_server.url}/json?u=1",
                                         headers = {{ ["X-Asked-By"] = "relais" }}, body = "hello", timeout = 5 }}
      local echo = res.body
      return res.status .. " " .. res.headers["x-test"] .. " " .. res.headers["content-type"] .. " "
        .. (echo:match('"method": "POST"') and "post" or "?") .. " "
        .. (echo:match('"body": "hello"') and "body" or "?") .. " "
        .. (echo:match('"x%-asked%-by": "relais"') and "header" or "?") .. " "
        .. (echo:match('"path": "/json%?u=1"') and "path" or "?")''')
    assert rcpt_text(relay) == "200 yes application/json post body header path"


def test_http_failures_and_redirects(policy_relay, http_server):
    closed = free_port()
    relay = start_answering(policy_relay, f'''
      local out = {{}}
      local _, refused = relais.http.request {{ url = "http://127.0.0.1:{closed}/" }}
      out[#out + 1] = refused
      local _, slow = relais.http.request {{ url = "{http_server.url}/slow?s=3", timeout = 0.5 }}
      out[#out + 1] = slow
      local _, big = relais.http.request {{ url = "{http_server.url}/big", max_size = 1000 }}
      out[#out + 1] = big
      local moved = relais.http.request {{ url = "{http_server.url}/redirect" }}
      out[#out + 1] = moved.status .. ":" .. moved.headers["location"]
      local followed = relais.http.request {{ url = "{http_server.url}/redirect", follow_redirects = 1 }}
      out[#out + 1] = followed.status
      return table.concat(out, "|")''')
    assert rcpt_text(relay) == ("connection refused|timeout|response body larger than 1000 bytes|302:/json|200")


def test_https_verifies_against_the_ca_file(policy_relay, tmp_path):
    from certificates import make_certificates
    folder = tmp_path / "tls"
    folder.mkdir()
    ca = make_certificates(folder)
    other = tmp_path / "other"
    other.mkdir()
    other_ca = make_certificates(other)
    server = HTTPServer(tls_folder=folder)
    try:
        relay = start_answering(policy_relay, f'''
          local good = relais.http.request {{ url = "{server.url}/json", ca_file = "{ca}" }}
          local _, wrong = relais.http.request {{ url = "{server.url}/json", ca_file = "{other_ca}" }}
          local _, system = relais.http.request {{ url = "{server.url}/json" }}
          return good.status .. "|" .. tostring(wrong ~= nil) .. "|" .. tostring(system ~= nil)''')
        assert rcpt_text(relay) == "200|true|true"
        assert server.requests == 1, "only the verified connection reached the server"
    finally:
        server.stop()


def test_customer_api_example(policy_relay, http_server):
    """examples/customer-api.lua: MAIL waits for the API; an API that cannot be reached defers."""
    from conftest import ROOT
    text = (ROOT / "examples" / "customer-api.lua").read_text().replace('listen = { "127.0.0.1:2525" },', "")
    closed = free_port()
    for api, expected in ((http_server.url, 250), (f"http://127.0.0.1:{closed}", 451)):
        relay = policy_relay(text.replace('relais.env("CUSTOMER_API", "http://127.0.0.1:8080")', f'"{api}"')
                             .replace('relais.env("APP_PASSWORD", "")', '"pw"'))
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
            client.ehlo("client.example")
            client.login("app", "pw")
            assert client.mail("a@example.org")[0] == expected
    assert http_server.requests == 1


def test_twenty_sessions_wait_on_http_at_once(policy_relay, http_server):
    """20 sessions whose rcpt hook waits 2 s on HTTP end in about 2 s, not 40 s."""
    relay = start_answering(policy_relay, f'''
      local res, err = relais.http.request {{ url = "{http_server.url}/slow?s=2", timeout = 5 }}
      return res and res.body or err''')
    results = []

    def session():
        results.append(rcpt_text(relay))
    threads = [threading.Thread(target=session) for _ in range(20)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    assert results == ["slow ok"] * 20
    assert elapsed < 6, elapsed
    assert http_server.requests == 20


def test_a_waiting_hook_does_not_stall_other_connections(policy_relay, http_server):
    relay = start_answering(policy_relay, f'''
      if rcpt.address == "slow@example.com" then
        return relais.http.request {{ url = "{http_server.url}/slow?s=3" }}.body
      end
      return "fast"''')
    slow = threading.Thread(target=lambda: rcpt_text(relay, "slow@example.com"))
    slow.start()
    time.sleep(0.3)
    started = time.time()
    assert rcpt_text(relay) == "fast"
    assert time.time() - started < 1
    slow.join()


@pytest.mark.parametrize("before", [
    "",
    # A first handler with no opinion ends at once; the second one waits: the limit ends that wait.
    'relais.on("mail", function(session, sender) return nil end)\n',
], ids=["one handler", "behind a handler that ended at once"])
def test_hook_over_its_wall_clock_limit_answers_451(policy_relay, http_server, before):
    relay = policy_relay(f'''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, lua = {{ max_hook_time = 1 }} }}
{before}relais.on("mail", function(session, sender)
  relais.http.request {{ url = "{http_server.url}/slow?s=4", timeout = 10 }}
  return relais.accept()
end)
''')
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.ehlo("client.example")
        started = time.time()
        code, text = client.mail("a@example.org")
        elapsed = time.time() - started
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        assert 0.9 < elapsed < 3, elapsed
        # The session goes on: the next command is answered.
        assert client.noop()[0] == 250
    relay.wait_log("max_hook_time")


def test_redis_calls(policy_relay, redis_server):
    redis = redis_server(password="s3cret")
    redis.command("-n", "2", "SET", "greeting", "hello")
    relay = start_answering(policy_relay, '''
      local out = {}
      out[#out + 1] = r:call("GET", "greeting")
      out[#out + 1] = r:call("INCR", "counter")
      out[#out + 1] = r:call("INCRBY", "counter", 41)
      out[#out + 1] = tostring(r:call("GET", "nothing"))
      local _, err = r:call("NOSUCHCOMMAND")
      out[#out + 1] = err:match("^ERR unknown command") and "ERR" or err
      r:call("RPUSH", "list", "a", "b")
      out[#out + 1] = table.concat(r:call("LRANGE", "list", 0, -1), ",")
      local _, denied = wrong:call("PING")
      out[#out + 1] = denied:match("WRONGPASS") and "WRONGPASS" or denied
      return table.concat(out, " ")''',
                            prelude=f'local r = relais.redis("{redis.address}", {{ password = "s3cret", db = 2 }})\n'
                                    f'local wrong = relais.redis("{redis.address}", {{ password = "nope" }})')
    assert rcpt_text(relay) == "hello 1 42 nil ERR a,b WRONGPASS"
    assert redis.command("-n", "2", "GET", "counter") == b"42\n"
    assert "s3cret" not in relay.log


def test_redis_down_then_back(policy_relay, redis_server):
    redis = redis_server()
    relay = start_answering(policy_relay, '''
      local value, err = r:call("INCR", "n")
      return value or err''', prelude=f'local r = relais.redis("{redis.address}")')
    assert rcpt_text(relay) == "1"
    redis.stop()
    assert rcpt_text(relay) in ("connection closed", "connection refused")
    assert rcpt_text(relay) == "connection refused"
    redis.start()
    assert rcpt_text(relay) == "1"


def test_rate_limit_example(policy_relay, redis_server):
    """examples/rate-limit.lua: three messages per sender per hour, counted in Redis."""
    from conftest import ROOT
    redis = redis_server()
    text = (ROOT / "examples" / "rate-limit.lua").read_text()
    relay = policy_relay(text.replace("127.0.0.1:6379", redis.address).replace("per_hour = 100", "per_hour = 3"))
    codes = []
    for _ in range(4):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
            client.ehlo("client.example")
            codes.append(client.mail("bulk@example.org")[0])
    assert codes == [250, 250, 250, 451]
    assert redis.command("GET", "relais:rate:bulk@example.org") == b"4\n"


def test_dnsbl_example(policy_relay, dns_server):
    """examples/dnsbl.lua refuses a listed client at connect."""
    from conftest import ROOT, Dialog
    text = (ROOT / "examples" / "dnsbl.lua").read_text()
    relay = policy_relay(text.replace('"127.0.0.1:53"', f'"{dns_server.address}"')
                         .replace('"zen.spamhaus.org"', '"bl.example"'))
    # The relay sees the client as 127.0.0.1, listed as 1.0.0.127.bl.example.
    greeting = Dialog(relay.port).greeting
    assert greeting.startswith(b"554 5.7.1 "), greeting
    assert b"bl.example" in greeting


def test_reload_while_hooks_wait(policy_relay, http_server):
    """A transaction waiting in a hook across a reload finishes on its generation."""
    import signal
    version = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }} }}
relais.on("rcpt", function(session, rcpt)
  relais.http.request {{ url = "{url}/slow?s=2" }}
  return relais.accept("{version}")
end)
'''
    relay = policy_relay(version.format(url=http_server.url, version="first"))
    waiting = []
    thread = threading.Thread(target=lambda: waiting.append(rcpt_text(relay)))
    thread.start()
    assert wait_for(lambda: http_server.requests == 1, timeout=5)
    offset = len(relay.log)
    relay.config.write_text(version.format(url=http_server.url, version="second"))
    relay.process.send_signal(signal.SIGHUP)
    relay.wait_log("policy reloaded", after=offset)
    thread.join()
    assert waiting == ["first"]
    assert rcpt_text(relay) == "second"


def test_simulate_performs_real_calls(tmp_path, http_server, dns_server):
    policy = tmp_path / "policy.lua"
    policy.write_text(f'''relais.config {{ dns = {{ servers = {{ "{dns_server.address}" }} }} }}
relais.on("rcpt", function(session, rcpt)
  local res = relais.http.request {{ url = "{http_server.url}/json" }}
  local a = relais.dns.lookup("host.example", "A")
  return relais.accept("http " .. res.status .. " dns " .. a[1])
end)
''')
    result = subprocess.run([str(BINARY), "simulate", str(policy), "--from", "a@example.org", "--to", "b@example.com", "-"],
                            input=b"Subject: x\n\nhi\n", capture_output=True)
    assert result.returncode == 0, result.stderr
    assert "250 2.1.5 http 200 dns 192.0.2.10" in result.stdout.decode()
    assert http_server.requests == 1


def test_waiting_is_refused_while_loading(tmp_path, http_server):
    policy = tmp_path / "policy.lua"
    policy.write_text(f'relais.http.request {{ url = "{http_server.url}/json" }}\n')
    result = subprocess.run([str(BINARY), "check", str(policy)], capture_output=True)
    assert result.returncode != 0
    assert "policy.lua:1: relais.http.request can only wait inside a hook" in result.stderr.decode()


def test_calls_are_counted_in_the_metrics(policy_relay, dns_server, http_server):
    from test_admin import call, samples
    port = free_port()
    relay = start_answering(policy_relay, f'''
      relais.dns.lookup("host.example", "A")
      relais.dns.lookup("nothing.missing.example", "A")
      relais.http.request {{ url = "{http_server.url}/json" }}
      return "ok"''', config=f'dns = {{ servers = {{ "{dns_server.address}" }} }}, admin = "127.0.0.1:{port}"')
    for _ in range(2):
        assert rcpt_text(relay) == "ok"
    relay.wait_log("admin endpoint listening")
    values = samples(port)

    def count(service, result):
        return values.get(("relais_hook_io_calls_total", (("result", result), ("service", service))), 0)
    # Each lookup goes out once; the second session's come from the cache (NXDOMAIN included).
    assert (count("dns", "ok"), count("dns", "error"), count("dns", "cached")) == (1, 1, 2)
    assert count("http", "ok") == 2
    assert values[("relais_hook_io_duration_seconds_count", (("service", "http"),))] == 2
