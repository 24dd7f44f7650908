"""Hot reload: file changes and SIGHUP load a new policy generation; a
broken policy leaves the running one serving; transactions in flight
finish on the generation they started with."""
import signal
import socket
import time

from conftest import Dialog

POLICY = '''relais.config { relay_networks = { "127.0.0.0/8" } }
relais.on("rcpt", function(session, rcpt)
  if rcpt.domain == "x.example" then return relais.reject(550, "5.7.1 VERSION") end
end)
'''


def rcpt_reply(relay, domain="x.example") -> bytes:
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@%s>\r\nQUIT\r\n" % domain.encode())
    reply = d.replies(3).split(b"\r\n")[1]
    d.close()
    return reply


def rewrite(path, text):
    """Replaces the file the way editors do: write a new file, rename it over."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.rename(path)


def test_file_change_reloads_the_policy(policy_relay):
    relay = policy_relay(POLICY.replace("VERSION", "one"))
    assert rcpt_reply(relay) == b"550 5.7.1 one"
    offset = len(relay.log)
    rewrite(relay.config, POLICY.replace("VERSION", "two"))
    relay.wait_log("policy reloaded", after=offset)
    assert "generation=2" in relay.log[offset:]
    assert rcpt_reply(relay) == b"550 5.7.1 two"


def test_transaction_in_flight_finishes_on_its_generation(policy_relay):
    relay = policy_relay(POLICY.replace("VERSION", "old"))
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\n")
    assert d.replies(1) == b"250 2.1.0 Ok\r\n"
    offset = len(relay.log)
    rewrite(relay.config, POLICY.replace("VERSION", "new"))
    relay.wait_log("policy reloaded", after=offset)
    d.send(b"RCPT TO:<b@x.example>\r\nRSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.example>\r\n")
    assert d.replies(4) == (b"550 5.7.1 old\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n550 5.7.1 new\r\n")


def test_broken_policy_keeps_the_running_generation(policy_relay):
    relay = policy_relay(POLICY.replace("VERSION", "good"))
    offset = len(relay.log)
    rewrite(relay.config, POLICY.replace("VERSION", "bad") + "\nrelais.on('rcpt', function(s, r) return end end)\n")
    log = relay.wait_log("policy reload failed", after=offset)
    assert "generation 1 keeps serving" in log[offset:]
    assert "policy.lua:6: ')' expected near 'end'" in log[offset:]
    assert rcpt_reply(relay) == b"550 5.7.1 good"
    offset = len(relay.log)
    rewrite(relay.config, POLICY.replace("VERSION", "bad") + '\nrelais.config { listn = { "127.0.0.1:1" } }\n')
    log = relay.wait_log("policy reload failed", after=offset)
    assert "policy.lua:6: relais.config: unknown key \"listn\"" in log[offset:]
    assert rcpt_reply(relay) == b"550 5.7.1 good"


def test_sighup_reloads(policy_relay):
    relay = policy_relay(POLICY.replace("VERSION", "one"))
    offset = len(relay.log)
    relay.process.send_signal(signal.SIGHUP)
    relay.wait_log("policy reloaded", after=offset)
    assert "generation=2" in relay.log[offset:]
    assert rcpt_reply(relay) == b"550 5.7.1 one"


def test_changes_to_required_modules_and_read_files_reload(policy_relay):
    relay = policy_relay('''relais.config { relay_networks = { "127.0.0.0/8" } }
local rules = require("rules")
local blocked = relais.read_lines("blocked.txt")
relais.on("rcpt", function(session, rcpt)
  for _, domain in ipairs(blocked) do
    if rcpt.domain == domain then return relais.reject(550, "5.7.1 " .. rules.text) end
  end
end)
''', files={"rules.lua": 'return { text = "first" }', "blocked.txt": "x.example\n"})
    folder = relay.config.parent
    assert rcpt_reply(relay) == b"550 5.7.1 first"
    offset = len(relay.log)
    rewrite(folder / "rules.lua", 'return { text = "second" }')
    relay.wait_log("policy reloaded", after=offset)
    assert rcpt_reply(relay) == b"550 5.7.1 second"
    offset = len(relay.log)
    rewrite(folder / "blocked.txt", "y.example\n")
    relay.wait_log("policy reloaded", after=offset)
    assert rcpt_reply(relay, "x.example") == b"250 2.1.5 Ok"
    assert rcpt_reply(relay, "y.example") == b"550 5.7.1 second"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listeners_follow_the_policy(policy_relay):
    first, second = free_port(), free_port()
    relay = policy_relay(f'relais.config {{ listen = {{ "127.0.0.1:{first}" }} }}', "--no-default-listen")
    assert Dialog(first).greeting.startswith(b"220 ")
    offset = len(relay.log)
    rewrite(relay.config, f'relais.config {{ listen = {{ "127.0.0.1:{second}" }} }}')
    relay.wait_log("policy reloaded", after=offset)
    relay.wait_log("stopped listening", after=offset)
    relay.wait_log(f"address=127.0.0.1:{second}", after=offset)
    assert Dialog(second).greeting.startswith(b"220 ")
    time.sleep(0.1)
    try:
        socket.create_connection(("127.0.0.1", first), timeout=1).close()
        still_open = True
    except OSError:
        still_open = False
    assert not still_open


VERSIONED = '''relais.config { relay_networks = { "127.0.0.0/8" } }
relais.on("data", function(session, msg) msg:add_header("X-Policy-Version", "VERSION") end)
'''


def test_reload_every_200ms_under_smtp_source_load(policy_relay):
    """smtp-source sends 20,000 messages over 20 sessions while the policy
    alternates between valid versions and a broken one every 200 ms."""
    import re
    import subprocess
    relay = policy_relay(VERSIONED.replace("VERSION", "0"))
    source = subprocess.Popen(["smtp-source", "-s", "20", "-m", "20000", "-l", "2048", "-d",
                               "-f", "a@example.org", "-t", "b@example.com", f"127.0.0.1:{relay.port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    live = {0: time.time()}
    version = 0
    step = 0
    while source.poll() is None:
        time.sleep(0.2)
        step += 1
        if step % 2:
            rewrite(relay.config, VERSIONED.replace("VERSION", "broken") + "\nthis is not lua\n")
        else:
            version += 1
            rewrite(relay.config, VERSIONED.replace("VERSION", str(version)))
            live[version] = time.time()
        relay.process.send_signal(signal.SIGHUP)
    ended = time.time()
    output = source.stdout.read().decode()
    assert source.returncode == 0, output
    assert relay.wait_spool_empty(timeout=60) == []
    messages = relay.maildir_messages(20000, timeout=60)
    assert len(messages) == 20000
    versions = [int(re.search(rb"\r\nX-Policy-Version: (\d+)\r\n", m).group(1)) for m in messages]
    assert set(versions) <= set(live)
    # Every valid version that served for a while (until the next valid one,
    # 400 ms later) shows in messages accepted after its reload.
    served = [v for v in live if v + 1 in live and live[v + 1] < ended]
    assert len(served) >= 3
    assert set(served) <= set(versions)
    log = relay.log
    assert "policy hook failed" not in log
    assert log.count("policy reload failed") >= len(served)
    assert log.count("policy reloaded") >= len(served)
