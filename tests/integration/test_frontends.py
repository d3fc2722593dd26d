"""What clients and monitoring see: the agents' HTTP endpoints (/primary, /replica, /health,
/metrics), their resistance to hostile clients, and a real haproxy, configured from
deploy/haproxy/haproxy.cfg, that keeps a writing client working across a switchover and a
failover."""

import json
import os
import random
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import pymysql
from prometheus_client.parser import text_string_to_metric_families

from harness import HAADM, SRC, Sandbox
from writer import Writer

FIRST = 101
PROXY_IP = "127.0.0.104"


TLS = None  # the client context of the sandbox's readonly operator "monitor" (setUpClass)


def get(ip, path, method="GET", timeout=3, ctx=None, plain=False):
    """(status, body) of an HTTP request to a node's agent: over TLS as the monitoring's
    certificate (what Prometheus and haproxy present), or plain."""
    ctx = ctx or TLS
    scheme = "http" if plain or ctx is None else "https"
    req = urllib.request.Request(f"{scheme}://{ip}:7300{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout,
                                    context=None if scheme == "http" else ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def patient_get(ip, path, pause):
    """The status of a GET over TLS from a client that, once its handshake is done, waits
    `pause` seconds before it sends its request (a load balancer on a busy host)."""
    with socket.create_connection((ip, 7300), timeout=3) as raw:
        with TLS.wrap_socket(raw, server_hostname=ip) as c:
            time.sleep(pause)
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
                      .encode())
            got = b""
            while chunk := c.recv(4096):
                got += chunk
            if not got.startswith(b"HTTP/1.1 "):
                raise ConnectionResetError("closed without an answer")
            return int(got[9:12])


def metric(ip, name, **labels):
    """One sample of a node's /metrics (0 when absent)."""
    for fam in text_string_to_metric_families(get(ip, "/metrics")[1]):
        for smp in fam.samples:
            if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()):
                return smp.value
    return 0


class SlowClients:
    """n clients that keep connections to an agent's HTTP port open, each sending a request
    one byte every `every` seconds and never finishing it; a connection the agent closes is
    opened again at the next tick. One thread, non-blocking sockets, 127.0.0.0/8 only."""

    REQUEST = (b"GET /primary HTTP/1.1\r\nHost: slow\r\nUser-Agent: slowloris\r\n"
               + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n")

    def __init__(self, ip, n=40, every=0.1):
        self.addr, self.n, self.every = (ip, 7300), n, every
        self.socks = {}  # slot -> [socket, bytes sent]
        self.reconnects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(self.addr)
        self.socks[i] = [s, 0]

    def _run(self):
        for i in range(self.n):
            self._open(i)
        while not self.stop.wait(self.every):
            for i, (s, sent) in list(self.socks.items()):
                try:
                    # closed by the agent (evicted or out of time): anything readable here is
                    # an end of file or a reset, never an answer to a request not finished
                    if select.select([s], [], [], 0)[0] and not s.recv(4096):
                        raise ConnectionResetError
                    if sent < len(self.REQUEST) - 1:
                        s.send(self.REQUEST[sent:sent + 1])
                        self.socks[i][1] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    s.close()
                    self.reconnects += 1
                    self._open(i)
        for s, _ in self.socks.values():
            s.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class HostileClients:
    """A client that, every `every` seconds, sends an agent's HTTP port garbage, an oversized
    request or a request with a bad line, and reads what comes back."""

    def __init__(self, ip, every=0.05):
        self.addr, self.every = (ip, 7300), every
        self.sent = 0
        self.answers = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.rng = random.Random(13)

    def _payload(self):
        k = self.sent % 4
        if k == 0:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 300))) \
                + b"\r\n\r\n"
        if k == 1:
            return b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n"
        if k == 2:
            return b"GET /primary HTTP/9.9\r\n\r\n"
        return b"\x00\x01\x02\r\n\r\n"

    def _run(self):
        while not self.stop.wait(self.every):
            try:
                with socket.create_connection(self.addr, timeout=3) as c:
                    c.sendall(self._payload())
                    head = c.recv(64)
                    code = head[9:12].decode(errors="replace") if head else "closed"
                    self.answers[code] = self.answers.get(code, 0) + 1
            except OSError as e:
                self.answers[type(e).__name__] = self.answers.get(type(e).__name__, 0) + 1
            self.sent += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def frame(kind, payload):
    """An RPC frame (agent/common/frame.h)."""
    return b"HA\x01" + bytes([kind]) + struct.pack(">I", len(payload)) + payload


def closed_by_peer(c, timeout=3):
    """True when the agent closes the connection (end of file or reset) within timeout,
    reading and dropping whatever it sends first."""
    c.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not c.recv(65536):
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


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
        global TLS
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        TLS = cls.sb.tls_context("monitor")

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
        # off after the 2 s deadline (the newest first take the oldest's slots), and the
        # endpoint works again
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

    def test_2b_slow_clients_cannot_starve_the_checks(self):
        """40 clients trickle never-ending requests into the primary's agent and a replica's
        (more than its 32 connection slots), while another sends garbage and oversized
        requests; HAProxy-style checks of /primary and /replica keep getting the right answer
        (one that waits 0.5 s between its handshake and its request too: twice the life of a
        slot under this flood, and within the 2 s an agent gives a whole request from its accept
        even when the handshake itself is slow on a loaded host), and the agents serve
        as before afterwards."""
        sb = self.sb
        s = sb.status()
        primary = s["primary"]
        replica = next(x["name"] for x in s["nodes"] if x["name"] != primary)
        pip, rip = sb.ip(int(primary[-1])), sb.ip(int(replica[-1]))
        pid = sb.agent_pid(int(primary[-1]))
        evicted0 = metric(pip, "haagent_http_dropped_total", reason="evicted")
        log = os.path.join(sb.node_dir(int(primary[-1])), "agent.log")
        log_at = os.path.getsize(log)
        lat, wrong, patient = [], [], 0
        t0 = time.monotonic()
        with SlowClients(pip) as slow, SlowClients(rip) as slow_r, HostileClients(pip) as bad:
            time.sleep(1)  # every slot taken
            while time.monotonic() - t0 < 12:
                for ip, path, want in ((pip, "/primary", 200), (pip, "/replica", 503),
                                       (rip, "/replica", 200), (rip, "/primary", 503)):
                    t = time.monotonic()
                    try:
                        code = get(ip, path, timeout=3)[0]
                    except OSError as e:
                        code = type(e).__name__
                    lat.append(time.monotonic() - t)
                    if code != want:
                        wrong.append((round(t - t0, 2), ip, path, code))
                # a check whose request comes long after its handshake (slots live about a
                # quarter of a second under this flood): plain slow clients do not evict it
                try:
                    code = patient_get(pip, "/primary", 0.5)
                except OSError as e:
                    code = type(e).__name__
                patient += 1
                if code != 200:
                    wrong.append((round(time.monotonic() - t0, 2), pip, "patient", code))
        print(f"{len(lat)} checks under {slow.n + slow_r.n} slow clients "
              f"({slow.reconnects + slow_r.reconnects} reconnections) and {bad.sent} hostile "
              f"requests ({bad.answers}): slowest answer {max(lat):.3f} s, "
              f"median {sorted(lat)[len(lat) // 2]:.4f} s; {patient} patient checks")
        self.assertEqual(wrong, [])
        self.assertGreater(patient, 5)
        self.assertLess(max(lat), 3)
        self.assertGreater(slow.reconnects, 0)  # the slow clients were cut off...
        self.assertEqual(bad.answers.get("400", 0) + bad.answers.get("closed", 0)
                         + bad.answers.get("ConnectionResetError", 0), bad.sent)
        self.assertGreater(bad.answers.get("400", 0), bad.sent // 2)  # ...the hostile answered
        # the agent is the same process, serving, counting what it dropped, logging a summary
        self.assertEqual(sb.agent_pid(int(primary[-1])), pid)
        self.assertEqual(get(pip, "/primary")[0], 200)
        self.assertTrue(sb.status()["authoritative"])
        evicted = metric(pip, "haagent_http_dropped_total", reason="evicted") - evicted0
        refused = metric(pip, "haagent_http_dropped_total", reason="refused")
        self.assertGreater(evicted, 0)
        self.assertLessEqual(metric(pip, "haagent_http_connections"), 32)
        took = time.monotonic() - t0
        with open(log) as f:
            f.seek(log_at)
            lines = [x for x in f if " http-evicted " in x]
        self.assertLessEqual(len(lines), took // 10 + 1, "http-evicted: once per 10 s at most")
        print(f"{primary}: {evicted:.0f} connections evicted, {refused:.0f} refused (bursts), "
              f"{len(lines)} http-evicted log lines")

    def test_2c_garbage_on_the_rpc_port_closes_the_connection(self):
        """Garbage, an oversized frame header, an undecodable message and health reports
        carrying a field numbered 0 (which protobuf-c keeps but cannot pack again) get the
        connection closed or the report ignored; the agent answers status all along."""
        sb = self.sb
        s = sb.status()
        leader = s["leader"]
        lip = sb.ip(int(leader[-1]))
        pid = sb.agent_pid(int(leader[-1]))
        other = next(int(x["name"][-1]) for x in s["nodes"] if x["name"] != leader)
        # after the TLS layer (the decoders are what is under test), as an admin, or as the
        # node whose report it is (a report is taken only from the node it names)
        for what, who, data in (
                ("text", "admin", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                ("random bytes", "admin", bytes(random.Random(5).randrange(256)
                                                for _ in range(4000))),
                ("a 4 GiB frame", "admin", b"HA\x01\x03\xff\xff\xff\xff"),
                ("an unknown type", "admin", frame(200, b"")),
                ("a status request that does not decode", "admin", frame(3, b"\xff\xff\xff")),
                ("a report from the agent itself", leader,
                 frame(1, b"\x08" + bytes([int(leader[-1])])))):
            with sb.connect(lip, 7200, who=who, timeout=5) as c:
                c.sendall(data)
                self.assertTrue(closed_by_peer(c), f"{what}: the connection stays open")
        # and plain garbage never gets past the handshake
        with socket.create_connection((lip, 7200), timeout=5) as c:
            c.sendall(frame(3, b"\xff\xff\xff"))
            self.assertTrue(closed_by_peer(c), "plain: the connection stays open")
        # HealthReport{node_id: other, health{db: up, <80 00>: 5}}, again and again, while
        # status is asked: every answer decodes
        bad = frame(1, b"\x08" + bytes([other]) + b"\x12\x05\x08\x01\x80\x00\x05")
        with sb.connect(lip, 7200, who=f"node{other}", timeout=5) as c:
            for _ in range(20):
                c.sendall(bad * 10)
                r = sb.haadm("status", "--json")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(json.loads(r.stdout)["authoritative"])
        self.assertEqual(sb.agent_pid(int(leader[-1])), pid)
        with open(os.path.join(sb.node_dir(int(leader[-1])), "agent.log")) as f:
            log = f.read()
        for ev in ("rpc-bad-frame", "rpc-bad-message", "rpc-unknown-node"):
            self.assertIn(ev, log)
        self.assertIn('type=health-report node_id=%d error="field 0"' % other, log)

    def test_2d_the_http_port_wants_a_certificate(self):
        sb = self.sb
        ip = sb.ip(1)
        # plain HTTP: refused with a 403 that says what to do, the parser still hardened
        code, body = get(ip, "/metrics", plain=True)
        self.assertEqual(code, 403)
        self.assertIn("TLS with a client certificate", body)
        self.assertEqual(get(ip, "/primary", plain=True)[0], 403)
        # TLS without a certificate, or with another CA's: no answer
        other = os.path.join(sb.dir, "other")
        if not os.path.exists(os.path.join(other, "x.crt")):
            for args in (["ca", "--dir", other], ["operator", "x", "--role", "admin", "--dir", other]):
                subprocess.run([HAADM, "cert"] + args, check=True, capture_output=True, timeout=30)
        for ctx in (sb.tls_context(who=None),
                    sb.tls_context(cert=os.path.join(sb.dir, "other", "x.crt"),
                                   key=os.path.join(sb.dir, "other", "x.key"))):
            with self.assertRaises((urllib.error.URLError, ConnectionResetError, OSError)):
                get(ip, "/metrics", ctx=ctx)
        with open(os.path.join(sb.node_dir(1), "agent.log")) as f:
            self.assertIn("http-tls-refused", f.read())
        # with a certificate of the cluster's CA: any role reads
        for who in ("monitor", "admin", "node2"):
            self.assertEqual(get(ip, "/metrics", ctx=sb.tls_context(who))[0], 200, who)
        # http_plain_checks: /primary and /replica open to plain checks, nothing else
        sb.restart_agents_with("[tls]\nhttp_plain_checks = yes\n")
        try:
            sb.wait_leader()
            primary = sb.wait_for(sb.whole, 30, what="a whole cluster")["primary"]
            pip = sb.ip(int(primary[-1]))
            sb.wait_for(lambda: get(pip, "/primary", plain=True)[0] == 200, 10,
                        what="plain /primary answered")
            self.assertEqual(get(pip, "/replica", plain=True)[0], 503)
            code, body = get(pip, "/health", plain=True)
            self.assertEqual(code, 403)
            self.assertIn("only /primary and /replica", body)
            self.assertEqual(get(pip, "/metrics", plain=True)[0], 403)
            self.assertEqual(get(pip, "/primary")[0], 200)  # TLS still works beside it
        finally:
            sb.restart_agents_with("")

    def _start_haproxy(self):
        with open(os.path.join(SRC, "deploy", "haproxy", "haproxy.cfg")) as f:
            cfg = f.read()
        for n in (1, 2, 3):
            cfg = cfg.replace(f"127.0.0.{10 + n}:3306", f"{self.sb.ip(n)}:3306")
        cfg = cfg.replace("/etc/haagent/tls/", os.path.join(self.sb.dir, "tls") + "/")
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
