"""Several relais nodes sharing one smarthost's rate, quota and connection
limit through a real redis-server; an aiosmtpd upstream counts what arrives."""
import signal
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import BINARY, wait_for
from services import RedisServer, free_port
from upstream import Upstream

CLUSTER = '''relais.config {{ relay_networks = {{ "127.0.0.0/8" }}, queue = {{ retry_min = 1, retry_max = 2 }},
  cluster = {{ redis = "{redis}", node = "{node}", lease = {lease} }}{admin} }}
local up = relais.smarthost {{ name = "shared-up", host = "127.0.0.1", port = {port}, tls = "none", timeout = 60,
  shared = true{limits} }}
relais.on("route", function(msg, rcpt) if msg.is_bounce then return nil end return up end)
'''


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def upstream():
    servers = []

    def start(**behaviour):
        server = Upstream(**behaviour).start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


def start_nodes(policy_relay, redis, upstream, count=3, limits="", lease=30, admin=False):
    nodes = []
    for index in range(count):
        admin_field = f', admin = "127.0.0.1:{free_port()}"' if admin else ""
        nodes.append(policy_relay(CLUSTER.format(redis=redis.address, node=f"node{index + 1}", lease=lease,
                                                 port=upstream.port, limits=limits, admin=admin_field)))
    # Every node has seen every other in a heartbeat (2 s apart).
    assert wait_for(lambda: redis.command("ZCARD", "relais:nodes") == f"{count}\n".encode(), timeout=10)
    time.sleep(2.5)
    return nodes


def send(node, count, subject="m"):
    with smtplib.SMTP("127.0.0.1", node.port, timeout=30) as client:
        for number in range(count):
            client.sendmail("a@example.org", ["b@example.com"], f"Subject: {subject}{number}\r\n\r\nx\r\n".encode())


def send_all(nodes, per_node, subject="m"):
    threads = [threading.Thread(target=send, args=(node, per_node, f"{subject}-{index}-"))
               for index, node in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def busiest_second(times):
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)


def test_a_shared_rate_holds_across_three_nodes(policy_relay, redis, upstream):
    """150 messages over three nodes to one smarthost with a shared rate of 10/s arrive at about 10/s in all."""
    sink = upstream()
    nodes = start_nodes(policy_relay, redis, sink, limits=", rate = 10")
    send_all(nodes, 50)
    assert wait_for(lambda: len(sink.messages) == 150, timeout=40)
    times = sorted(sink.recorder.times)
    span = times[-1] - times[0]
    assert span >= 149 / 10 * 0.9, span   # unshared, three nodes would take 5 s
    assert busiest_second(times) <= 12, busiest_second(times)
    assert {b"Subject: m-%d-" % i in b"".join(m[2] for m in sink.messages) for i in range(3)} == {True}


def test_a_shared_quota_holds_across_nodes(policy_relay, redis, upstream):
    second = time.gmtime().tm_sec
    if second > 40:
        time.sleep(61 - second)   # the whole test inside one UTC minute
    sink = upstream()
    nodes = start_nodes(policy_relay, redis, sink, limits=", quota = { per_minute = 20 }")
    send_all(nodes, 15)
    assert wait_for(lambda: len(sink.messages) == 20, timeout=20)
    time.sleep(3)
    assert len(sink.messages) == 20
    assert any("shared quota per_minute = 20 used up across the cluster" in node.log for node in nodes)


def test_shared_max_connections_hold(policy_relay, redis, upstream):
    sink = upstream(data_delay=lambda content: 0.3)
    nodes = start_nodes(policy_relay, redis, sink, limits=", max_connections = 4")
    send_all(nodes, 12)
    assert wait_for(lambda: len(sink.messages) == 36, timeout=60)
    assert 2 <= sink.controller.most <= 4, sink.controller.most


def test_a_killed_nodes_leases_come_back(policy_relay, redis, upstream):
    sink = upstream(data_delay=lambda content: 30 if b"stall" in content else 0)
    first, second = start_nodes(policy_relay, redis, sink, count=2, limits=", max_connections = 4", lease=3)
    send(first, 4, subject="stall")
    assert wait_for(lambda: redis.command("ZCARD", "relais:leases:shared-up") == b"4\n", timeout=10)
    first.kill()
    killed = time.time()
    send(second, 1, subject="after")
    assert wait_for(lambda: any(b"Subject: after" in m[2] for m in sink.messages), timeout=20)
    waited = sink.recorder.times[-1] - killed
    # Not before the dead node's leases expired (3 s, renewed every 2 s), and soon after.
    assert 1.0 <= waited <= 8, waited


def test_redis_down_falls_back_to_each_nodes_share(policy_relay, redis, upstream):
    sink = upstream()
    nodes = start_nodes(policy_relay, redis, sink, limits=", rate = 9")
    redis.stop()
    for node in nodes:
        node.wait_log("cluster Redis unreachable", timeout=10)
    send_all(nodes, 15)
    assert wait_for(lambda: len(sink.messages) == 45, timeout=40)
    times = sorted(sink.recorder.times)
    # Each node sends at 9 / 3 = 3 per second: 45 messages take about 5 s.
    assert times[-1] - times[0] >= 44 / 9 * 0.8
    assert busiest_second(times) <= 12
    for node in nodes:
        assert node.log.count("cluster Redis unreachable") == 1
    redis.start()
    for node in nodes:
        node.wait_log("cluster Redis reachable again", timeout=10)
    send_all(nodes, 5, subject="back")
    assert wait_for(lambda: len(sink.messages) == 60, timeout=20)


def test_cluster_status_api_and_command(policy_relay, redis, upstream, tmp_path):
    sink = upstream(data_delay=lambda content: 5 if b"stall" in content else 0)
    nodes = start_nodes(policy_relay, redis, sink, count=2, admin=True,
                        limits=", rate = 50, max_connections = 3, quota = { per_day = 1000 }")
    send(nodes[0], 2, subject="stall")
    assert wait_for(lambda: redis.command("ZCARD", "relais:leases:shared-up") == b"2\n", timeout=10)
    result = subprocess.run([str(BINARY), "cluster", "status", "--config", str(nodes[1].config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("node node2 (shared, 2 live node(s) known)")
    assert any(line.strip().startswith("node1  last heartbeat") for line in lines)
    assert any(line.strip().startswith("node2  last heartbeat") for line in lines)
    upstream_line = next(line for line in lines if line.strip().startswith("shared-up"))
    assert "connections 2/3 (node1 2)" in upstream_line, upstream_line
    assert "quota per_day 2/1000" in upstream_line, upstream_line
    json_result = subprocess.run([str(BINARY), "cluster", "status", "--json", "--config", str(nodes[1].config)],
                                 capture_output=True, text=True, timeout=30)
    assert '"mode":"shared"' in json_result.stdout.replace(" ", "")
    import re
    from test_admin import samples
    port = int(re.search(r'admin = "127.0.0.1:(\d+)"', nodes[1].config.read_text()).group(1))
    values = samples(port)
    assert values[("relais_cluster_nodes", ())] == 2
    assert values[("relais_cluster_shared", ())] == 1
