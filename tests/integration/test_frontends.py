"""What clients and monitoring see: the agents' HTTP endpoints (/primary, /replica, /health,
/metrics), their resistance to hostile clients, and a real haproxy, configured from
deploy/haproxy/haproxy.cfg, that keeps a writing client working across a switchover and a
failover."""

import json
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import pymysql
from prometheus_client.parser import text_string_to_metric_families

from harness import SRC, Sandbox
from writer import Writer

FIRST = 101
PROXY_IP = "127.0.0.104"


def get(ip, path, method="GET", timeout=3):
    """(status, body) of an HTTP request to a node's agent."""
    req = urllib.request.Request(f"http://{ip}:7300{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class ProxyWriter(Writer):
    """The acknowledged-write checker, writing through haproxy's write port; each row records
    the server that took it."""

    def __init__(self, sb, port):
        super().__init__(sb, table="sandbox.proxied", columns="id BIGINT PRIMARY KEY, sid INT",
                         insert="INSERT INTO {table} VALUES (%s, @@server_id)")
        self.port = port

    def _primary(self):
        return "proxy"

    def _connect(self, name):
        return pymysql.connect(host=PROXY_IP, port=self.port, user="app", password="app",
                               connect_timeout=2, read_timeout=3, write_timeout=3,
                               autocommit=True)

    def longest_gap(self, since):
        """The longest time without an acknowledged write from the last ack before `since`."""
        t = [x for x, _ in self.ack_times]
        before = [x for x in t if x < since]
        t = before[-1:] + [x for x in t if x >= since]
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)


class FrontendsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")

    def codes(self, path):
        return {f"node{n}": get(self.sb.ip(n), path)[0] for n in (1, 2, 3)}

    def expect_codes(self, primary, timeout=10):
        def pred():
            p, r = self.codes("/primary"), self.codes("/replica")
            want_p = {n: 200 if n == primary else 503 for n in p}
            want_r = {n: 503 if n == primary else 200 for n in r}
            return (p, r) if p == want_p and r == want_r else None
        return self.sb.wait_for(pred, timeout, what=f"/primary and /replica say {primary}")

    def test_0_endpoints_follow_the_role(self):
        sb = self.sb
        s = sb.status()
        primary = s["primary"]
        self.expect_codes(primary)
        ip = sb.ip(int(primary[-1]))
        code, body = get(ip, "/replica")
        self.assertIn("this node is the primary", body)
        self.assertEqual(get(ip, "/replica?max_lag=abc")[0], 400)
        self.assertEqual(get(ip, "/nope")[0], 404)
        self.assertEqual(get(ip, "/primary", method="POST")[0], 405)
        code, body = get(ip, "/primary", method="HEAD")
        self.assertEqual((code, body), (200, ""))
        h = json.loads(get(ip, "/health")[1])
        self.assertEqual((h["node"], h["role"], h["writable_primary"]), (primary, "primary", True))
        self.assertEqual(h["epoch"], s["epoch"])
        other = [x["name"] for x in s["nodes"] if x["name"] != primary][0]
        h = json.loads(get(sb.ip(int(other[-1])), "/health")[1])
        self.assertEqual((h["role"], h["healthy_replica"], h["primary"]),
                         ("replica", True, primary))
        # a replica in maintenance is not offered for reads
        r = sb.haadm("node", "maintenance", other, "on")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            # the command returns once the leader applied it; the node itself applies it a
            # moment later (it answers from its own copy of the replicated state)
            code, body = sb.wait_for(
                lambda: (lambda r: r if r[0] == 503 else None)(
                    get(sb.ip(int(other[-1])), "/replica")),
                5, what=f"{other}'s /replica answering 503")
            self.assertIn("in maintenance", body)
        finally:
            sb.haadm("node", "maintenance", other, "off")
        # the codes move with the role
        r = sb.haadm("failover", "--to", other)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.expect_codes(other)

    def test_1_metrics_are_valid_prometheus_text(self):
        sb = self.sb
        s = sb.status()
        seen = {}
        for n in (1, 2, 3):
            code, text = get(sb.ip(n), "/metrics")
            self.assertEqual(code, 200)
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            for name in ("haagent_db_up", "haagent_role", "haagent_epoch", "haagent_raft_term",
                         "haagent_writable_primary", "haagent_failovers", "haagent_write_lease",
                         "haagent_replication_lag_seconds", "haagent_probe_duration_seconds"):
                self.assertIn(name, fams, f"node{n} lacks {name}")
            val = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
                   for f in fams.values() for smp in f.samples}
            node = (("node", f"node{n}"),)
            self.assertEqual(val[("haagent_epoch", node)], s["epoch"])
            self.assertEqual(val[("haagent_db_up", node)], 1)
            seen[f"node{n}"] = val[("haagent_writable_primary", node)]
            planned = val[("haagent_failovers_total", (("kind", "planned"), ("node", f"node{n}")))]
            self.assertGreaterEqual(planned, 1)  # test_0 switched over
            # metric and label names follow the conventions
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    self.assertRegex(line, r'^haagent_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? '
                                           r'-?[0-9.e+]+$')
        self.assertEqual(seen, {x: 1.0 if x == s["primary"] else 0.0 for x in seen})

    def test_2_hostile_clients_cannot_harm_the_agent(self):
        sb = self.sb
        ip = sb.ip(1)
        # oversized: cut off with 400
        c = socket.create_connection((ip, 7300), timeout=5)
        c.sendall(b"GET /" + b"a" * 10000)
        data = c.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data)
        c.close()
        # garbage
        c = socket.create_connection((ip, 7300), timeout=5)
        c.sendall(b"\x00\x01\x02\r\n\r\n")
        self.assertTrue(c.recv(4096).startswith(b"HTTP/1.1 400"))
        c.close()
        # slow clients holding every connection slot: the agent stays responsive, they are cut
        # off after the deadline, and the endpoint works again
        slow = []
        for _ in range(40):
            s = socket.create_connection((ip, 7300), timeout=10)
            s.sendall(b"GET /pri")
            slow.append(s)
        t0 = time.monotonic()
        st = sb.status(conf_node=1)  # RPC and raft on the same loop still answer
        self.assertTrue(st["authoritative"])
        self.assertLess(time.monotonic() - t0, 2)
        closed = 0
        for s in slow:
            try:
                s.settimeout(8)
                if s.recv(1) == b"":
                    closed += 1
            except (ConnectionResetError, socket.timeout):
                closed += 1
            s.close()
        self.assertEqual(closed, 40)
        self.assertLess(time.monotonic() - t0, 12)
        self.assertIn(get(ip, "/health")[0], (200,))
        with open(os.path.join(sb.node_dir(1), "agent.log")) as f:
            self.assertIn("http-slow-client", f.read())

    def _start_haproxy(self):
        with open(os.path.join(SRC, "deploy", "haproxy", "haproxy.cfg")) as f:
            cfg = f.read()
        for n in (1, 2, 3):
            cfg = cfg.replace(f"127.0.0.{10 + n}:3306", f"{self.sb.ip(n)}:3306")
        cfg = cfg.replace("127.0.0.1:3307", f"{PROXY_IP}:3307")
        cfg = cfg.replace("127.0.0.1:3308", f"{PROXY_IP}:3308")
        path = os.path.join(self.sb.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        log = open(os.path.join(self.sb.dir, "haproxy.log"), "w")
        p = subprocess.Popen(["haproxy", "-db", "-f", path], stdout=log, stderr=log)
        self.addCleanup(lambda: (p.poll() is None and (p.send_signal(signal.SIGTERM),
                                                       p.wait(10)), log.close()))
        return p

    def test_3_haproxy_routes_writes_across_switchover_and_failover(self):
        sb = self.sb
        self._start_haproxy()
        s = sb.status()
        sid = {f"node{n}": int(sb.sql(n, "SELECT @@server_id")) for n in (1, 2, 3)}
        w = ProxyWriter(sb, 3307)
        w.setup()
        w.start()
        try:
            w.wait_acks(50)
            # reads go to the replicas only (haproxy starts every server up: the primary
            # leaves the read pool after its first failed checks)
            def read_sid():
                c = pymysql.connect(host=PROXY_IP, port=3308, user="app", password="app",
                                    connect_timeout=3)
                with c.cursor() as cur:
                    cur.execute("SELECT @@server_id")
                    v = cur.fetchone()[0]
                c.close()
                return v
            time.sleep(2.5)  # fall 2 x inter 1 s
            got = {read_sid() for _ in range(20)}
            self.assertNotIn(sid[s["primary"]], got)
            self.assertTrue(got)
            # planned switchover
            t0 = time.monotonic()
            r = sb.haadm("failover", "--json", timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            new = json.loads(r.stdout)["target"]
            w.wait_acks(50)
            gap_switchover = w.longest_gap(t0)
            self.assertEqual(self.last_sid(), sid[new])
            # failover: the primary's mariadbd dies
            t1 = time.monotonic()
            os.kill(sb.db_pid(int(new[-1])), signal.SIGKILL)
            sb.wait_for(lambda: (lambda st: st["primary"] not in ("", new) and st)(sb.status()),
                        20, what="automatic failover")
            w.wait_acks(50, timeout=30)
            gap_failover = w.longest_gap(t1)
            final = sb.status()["primary"]
            self.assertEqual(self.last_sid(), sid[final])
        finally:
            w.stop()
        print(f"through haproxy: longest write gap {gap_switchover:.2f} s across the switchover, "
              f"{gap_failover:.2f} s across the failover; {len(w.acked)} acked writes")
        self.assertLess(gap_switchover, 5)
        self.assertLess(gap_failover, 15)
        rows = set(int(x) for x in sb.sql(int(final[-1]),
                                          "SELECT id FROM sandbox.proxied").split())
        missing = [i for i in w.acked if i not in rows]
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:10]}")
        sb.up()

    def last_sid(self):
        c = pymysql.connect(host=PROXY_IP, port=3307, user="app", password="app",
                            connect_timeout=3)
        with c.cursor() as cur:
            cur.execute("SELECT sid FROM sandbox.proxied ORDER BY id DESC LIMIT 1")
            v = cur.fetchone()[0]
        c.close()
        return v


if __name__ == "__main__":
    unittest.main()
