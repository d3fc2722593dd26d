"""Who may talk to an agent (docs/security.md): mutual TLS on the raft, RPC and HTTP ports, and
roles. Each refusal is checked from the outside (the peer is turned away) and from the inside
(the agent logs who and why), and the cluster carries on afterwards."""

import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import unittest

from harness import HAADM, Sandbox

RPC, RAFT, HTTP = 7200, 7100, 7300
HOLD = 70  # more connections than the RPC port keeps (64)
MSG_HEALTH_REPORT, MSG_HEALTH_ACK, MSG_STATUS_REQUEST, MSG_STATUS_RESPONSE = 1, 2, 3, 4


def frame(msg_type, payload=b""):
    return b"HA\x01" + bytes([msg_type]) + struct.pack(">I", len(payload)) + payload


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def health_report(node_id):
    return bytes([0x08]) + varint(node_id)  # HealthReport.node_id = 1 (varint)


def read_frame(s):
    """(type, payload) of the next frame, or None when the agent closed the connection."""
    def exactly(n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = s.recv(n - len(buf))
            except (ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
                return None
            if not chunk:
                return None
            buf += chunk
        return buf
    h = exactly(8)
    if h is None:
        return None
    body = exactly(struct.unpack(">I", h[4:])[0])
    return None if body is None else (h[3], body)


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=211)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_leader()
        sb = cls.sb
        cls.other = os.path.join(sb.dir, "other-ca")
        tls = os.path.join(sb.dir, "tls")
        for args in (["ca", "--dir", cls.other],
                     ["operator", "mallory", "--role", "admin", "--dir", cls.other],
                     ["node", "node2", "--id", "2", "--address", sb.ip(2), "--dir", cls.other],
                     ["operator", "old", "--role", "admin", "--dir", tls, "--backdate", "10",
                      "--days", "5"],
                     ["node", "node9", "--id", "9", "--address", "127.0.0.219", "--dir", tls]):
            r = subprocess.run([HAADM, "cert"] + args, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise AssertionError(f"haadm cert {args}: {r.stdout}{r.stderr}")

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()

    def log(self, n):
        with open(os.path.join(self.sb.node_dir(n), "agent.log"), errors="replace") as f:
            return f.read()

    def logs(self):
        return "".join(self.log(n) for n in (1, 2, 3))

    def as_operator(self, cert, key, *args, ca=None):
        sb = self.sb
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAADM_")}
        env["HAAGENT_CONF"] = "/nonexistent"
        cmd = [HAADM, "-a", f"{sb.ip(1)}:{RPC}", "--ca", ca or sb.tls_file("ca.crt"),
               "--cert", cert, "--key", key] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=env)

    def assert_cluster_carries_on(self, primary):
        st = self.sb.status()
        self.assertTrue(st["authoritative"])
        self.assertTrue(st["auto_failover"], "nobody may have paused failover")
        self.assertEqual(st["primary"], primary)

    def test_operator_roles(self):
        sb = self.sb
        primary = sb.status()["primary"]
        mon = (sb.tls_file("monitor.crt"), sb.tls_file("monitor.key"))
        # readonly reads...
        r = self.as_operator(*mon, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_operator(*mon, "backup", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        # ...and changes nothing
        for args in (["pause", "--reason", "anyone can"], ["failover", "--no-wait"],
                     ["backup", "policy", "--keep-full", "1"],
                     ["node", "maintenance", "node2", "on"]):
            r = self.as_operator(*mon, *args)
            self.assertEqual(r.returncode, 17, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn("role admin", r.stdout + r.stderr)
        self.assertRegex(self.logs(), r'rpc-refused .*who="monitor \(readonly\)" request=admin')
        # a node's certificate is not an operator's either
        r = self.as_operator(sb.tls_file("node2.crt"), sb.tls_file("node2.key"), "pause")
        self.assertEqual(r.returncode, 17, r.stdout + r.stderr)
        # the admin may (and undoes it)
        adm = (sb.tls_file("admin.crt"), sb.tls_file("admin.key"))
        r = self.as_operator(*adm, "pause", "--reason", "test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.as_operator(*adm, "resume")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_cluster_carries_on(primary)

    def test_unauthenticated_operators_are_refused(self):
        sb = self.sb
        primary = sb.status()["primary"]
        # no certificate anywhere: haadm says where to put one
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAADM_")}
        env["HAAGENT_CONF"] = "/nonexistent"
        r = subprocess.run([HAADM, "-a", f"{sb.ip(1)}:{RPC}", "pause"], capture_output=True,
                           text=True, timeout=20, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no operator certificate", r.stderr)
        # a plain client, at the socket: the handshake fails, nothing is answered
        s = socket.create_connection((sb.ip(1), RPC), timeout=3)
        s.sendall(frame(MSG_STATUS_REQUEST))
        self.assertIsNone(read_frame(s))
        s.close()
        # another CA's admin; an expired admin of ours: haadm itself says so before it
        # connects...
        other = (os.path.join(self.other, "mallory.crt"), os.path.join(self.other, "mallory.key"))
        r = self.as_operator(*other, "pause", "--reason", "mallory")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("does not verify against", r.stderr)
        old = (sb.tls_file("old.crt"), sb.tls_file("old.key"))
        r = self.as_operator(*old, "pause", "--reason", "expired")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("expired", r.stderr)
        # ...and a client that presents them anyway is refused by the agent
        def present(cert, key):
            s = sb.connect(sb.ip(1), RPC, cert=cert, key=key)
            try:
                s.sendall(frame(MSG_STATUS_REQUEST))
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                pass
            self.assertIsNone(read_frame(s))
            s.close()

        # the refusals' log lines are rate-limited (a burst of 20, then one a second, shared
        # with the earlier floods): each is presented again, a second apart, until its line
        # is there (every attempt is refused: asserted above)
        for cert, key, why in ((*other, r"(unknown ca|certificate verify|unable to get local "
                                        r"issuer)"), (*old, r"expired")):
            pattern = rf"rpc-tls-refused .*side=server .*{why}"
            for _ in range(6):
                present(cert, key)
                if re.search(pattern, self.log(1)):
                    break
                time.sleep(1.1)
            self.assertRegex(self.log(1), pattern)
        log = self.log(1)
        self.assertIn("wrong version number", log)  # the plain client
        # a client without any certificate, at the socket (the agent wants one)
        ctx = sb.tls_context(who=None)
        with socket.create_connection((sb.ip(1), RPC), timeout=3) as raw:
            try:
                s = ctx.wrap_socket(raw)
                s.sendall(frame(MSG_STATUS_REQUEST))
                self.assertIsNone(read_frame(s))
            except (ssl.SSLError, ConnectionResetError):
                pass
        self.assert_cluster_carries_on(primary)

    def test_a_node_reports_only_its_own_health(self):
        sb = self.sb
        st = sb.status()
        leader = int(st["leader"][-1])
        other = next(n for n in (1, 2, 3) if n != leader)
        cert = (sb.tls_file(f"node{other}.crt"), sb.tls_file(f"node{other}.key"))
        forged = next(n for n in (1, 2, 3) if n not in (leader, other))
        # node `other`'s certificate sending node `forged`'s report: closed, logged
        s = sb.connect(sb.ip(leader), RPC, cert=cert[0], key=cert[1])
        s.sendall(frame(MSG_HEALTH_REPORT, health_report(forged)))
        self.assertIsNone(read_frame(s))
        s.close()
        self.assertRegex(self.log(leader),
                         rf'rpc-refused .*who="node{other} \(node {other}\)" '
                         rf'request=health-report reason="the report says node id {forged}"')
        # its own report is taken: the leader acknowledges it
        s = sb.connect(sb.ip(leader), RPC, cert=cert[0], key=cert[1])
        s.sendall(frame(MSG_HEALTH_REPORT, health_report(other)))
        got = read_frame(s)
        s.close()
        self.assertIsNotNone(got)
        self.assertEqual(got[0], MSG_HEALTH_ACK)
        # an operator cannot send health at all
        s = sb.connect(sb.ip(leader), RPC, who="admin")
        s.sendall(frame(MSG_HEALTH_REPORT, health_report(forged)))
        self.assertIsNone(read_frame(s))
        s.close()
        self.assert_cluster_carries_on(st["primary"])

    def raft_attempt(self, n, **files):
        """Connects to node n's raft port with the given certificate; True when the connection
        stays open for a moment (raft would talk), False when the agent turns it away."""
        try:
            s = self.sb.connect(self.sb.ip(n), RAFT, timeout=2, **files)
        except (ssl.SSLError, ConnectionResetError, OSError):
            return False
        s.settimeout(1.5)
        try:
            return s.recv(1) != b""  # raft never speaks first: a timeout means "accepted"
        except socket.timeout:
            return True
        except (ssl.SSLError, ConnectionResetError, OSError):
            return False
        finally:
            s.close()

    def test_raft_peers_are_who_their_certificate_says(self):
        sb = self.sb
        st = sb.status()
        # a genuine node certificate is accepted (the test of the test)
        self.assertTrue(self.raft_attempt(1, cert=sb.tls_file("node2.crt"),
                                          key=sb.tls_file("node2.key")))
        # another CA's "node2"; our CA's operator; our CA's node that is not a member
        self.assertFalse(self.raft_attempt(1, ca=sb.tls_file("ca.crt"),
                                           cert=os.path.join(self.other, "node2.crt"),
                                           key=os.path.join(self.other, "node2.key")))
        self.assertFalse(self.raft_attempt(1, cert=sb.tls_file("admin.crt"),
                                           key=sb.tls_file("admin.key")))
        self.assertFalse(self.raft_attempt(1, cert=sb.tls_file("node9.crt"),
                                           key=sb.tls_file("node9.key")))
        self.assertFalse(self.raft_attempt(1, cert=sb.tls_file("node1.crt"),
                                           key=sb.tls_file("node1.key")))
        # a plain TCP peer
        with socket.create_connection((sb.ip(1), RAFT), timeout=3) as s:
            s.sendall(b"\x01" + b"\x00" * 31)
            s.settimeout(3)
            try:
                self.assertEqual(s.recv(10), b"")
            except ConnectionResetError:
                pass
        log = self.log(1)
        self.assertRegex(log, r'raft-tls-refused .*side=server .*(unknown ca|certificate verify|unable to get local issuer)')
        self.assertRegex(log, r'raft-tls-refused .*who="admin \(admin\)" error="not a node cert')
        self.assertRegex(log, r'raft-tls-refused .*who="node9 \(node 9\)" error="its raft id is '
                              r'not a node of this cluster"')
        self.assertRegex(log, r'raft-tls-refused .*who="node1 \(node 1\)" error="it claims this '
                              r'node\'s own raft id"')
        # the cluster carries on, with the same leader and primary
        st2 = sb.status()
        self.assertEqual(st2["primary"], st["primary"])
        self.assertTrue(st2["authoritative"])

    def test_floods_of_strangers_are_bounded(self):
        """Connections that never speak TLS (300 to raft, 100 to RPC) cost the agent a fixed
        number of descriptors; an operator still gets in, and the primary keeps its lease."""
        sb = self.sb
        st = sb.status()
        leader = int(st["leader"][-1])
        pid = sb.agent_pid(leader)
        before = len(os.listdir(f"/proc/{pid}/fd"))
        held = []
        try:
            for port, n in ((RAFT, 300), (RPC, 100)):
                for _ in range(n):
                    held.append(socket.create_connection((sb.ip(leader), port), timeout=5))
            time.sleep(0.5)
            during = len(os.listdir(f"/proc/{pid}/fd"))
            # 16 raft handshakes and 64 RPC slots at most (with some slack for its own work)
            self.assertLess(during - before, 16 + 64 + 20, f"{before} -> {during} descriptors")
            r = sb.haadm("-t", "5000", "status", "--json")  # the oldest stranger gives way
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            for c in held:
                c.close()
        log = self.log(leader)
        self.assertRegex(log, r"raft-handshakes-full limit=16 .*count=\d+")
        self.assertRegex(log, r"rpc-too-many-connections limit=64 .*close the oldest handshake")
        # rate-limited: far fewer lines than refused connections
        self.assertLess(log.count("raft-handshakes-full"), 50)
        self.assert_cluster_carries_on(st["primary"])
        st2 = sb.status()
        self.assertEqual(st2["leader"], st["leader"], "the flood cost the leader its term")

    def test_certificate_rotation_without_downtime(self):
        sb = self.sb
        tls = os.path.join(sb.dir, "tls")
        with socket.create_connection((sb.ip(3), RPC), timeout=3) as raw:
            s = sb.tls_context().wrap_socket(raw)
            before = s.getpeercert(binary_form=True)
            s.close()
        r = subprocess.run([HAADM, "cert", "node", "node3", "--id", "3", "--address", sb.ip(3),
                            "--dir", tls, "--force"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        os.kill(sb.agent_pid(3), signal.SIGHUP)
        sb.wait_for(lambda: "tls-reload result=ok" in self.log(3), 5, what="node3 reloaded")

        def new_cert_served():
            with socket.create_connection((sb.ip(3), RPC), timeout=3) as raw:
                s = sb.tls_context().wrap_socket(raw)
                now = s.getpeercert(binary_form=True)
                s.close()
            return now != before
        sb.wait_for(new_cert_served, 5, what="node3 serving its new certificate")
        # raft and reports still flow to and from node3 with the new certificate
        sb.restart_agents_with("")  # new raft connections everywhere
        sb.wait_leader()
        sb.wait_for(lambda: sb.node(sb.status(), "node3")["agent"] == "reachable", 15,
                    what="node3 reporting with its new certificate")
        # a wrong file (another node's certificate: the key does not match) keeps the old
        # certificate, and says so
        shutil.copy(os.path.join(tls, "node3.crt"), os.path.join(tls, "node3.crt.good"))
        shutil.copy(os.path.join(tls, "node2.crt"), os.path.join(tls, "node3.crt"))
        try:
            os.kill(sb.agent_pid(3), signal.SIGHUP)
            sb.wait_for(lambda: "tls-reload result=failed" in self.log(3), 5,
                        what="reload refused")
            self.assertRegex(self.log(3), r"tls-reload result=failed .*(mismatch|does not match)")
            st = sb.status(addr=f"{sb.ip(3)}:{RPC}", local=True)
            self.assertEqual(st["served_by"], "node3")
        finally:
            os.replace(os.path.join(tls, "node3.crt.good"), os.path.join(tls, "node3.crt"))

    def test_a_reload_during_the_start_is_not_a_stop(self):
        """systemctl reload (SIGHUP) while the agent is still starting: its default action
        ended the agent, an exit systemd takes as clean (no restart)."""
        sb = self.sb
        os.kill(sb.agent_pid(3), signal.SIGTERM)
        sb.wait_for(lambda: sb.agent_pid(3) is None, 15, what="node3's agent stopped")
        before = self.log(3).count("tls-reload result=ok")
        sb.run_sandbox("start-agent", "3")
        pid = sb.wait_for(lambda: sb.agent_pid(3), 2, interval=0.002, what="haagentd exec'd")
        time.sleep(0.05)  # past the dynamic loader (10-20 ms here): main() runs
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # the first moments of its start, again and again
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.02)
        time.sleep(1)
        self.assertEqual(sb.agent_pid(3), pid, "a SIGHUP during the start ended the agent")
        sb.wait_for(lambda: self.log(3).count("tls-reload result=ok") > before, 5,
                    what="the reload done once the agent handles it")
        sb.wait_for(lambda: sb.node(sb.status(), "node3")["agent"] == "reachable", 15,
                    what="node3 reporting")

    def test_a_readonly_certificate_cannot_hold_every_rpc_slot(self):
        """64 connections of the readonly monitor certificate, kept busy, on the leader: an
        admin still gets in, and a restarted agent's reports still reach the leader (without
        them the primary would lose its write lease under a new leader)."""
        sb = self.sb
        st = sb.status()
        leader = int(st["leader"][-1])
        other = next(n for n in (1, 2, 3) if n != leader)
        held = []

        def fill():
            for _ in range(HOLD):
                s = None
                try:
                    s = sb.connect(sb.ip(leader), RPC, who="monitor")
                    s.sendall(frame(MSG_STATUS_REQUEST))
                    if read_frame(s) is not None:
                        held.append(s)
                        continue
                except (ssl.SSLError, OSError):
                    pass
                if s is not None:
                    s.close()
        try:
            fill()
            os.kill(sb.agent_pid(other), signal.SIGTERM)
            sb.wait_for(lambda: sb.agent_pid(other) is None, 15, what="the agent stopped")
            time.sleep(0.5)
            fill()  # the slot of its reports too
            sb.run_sandbox("start-agent", str(other))
            addr = f"{sb.ip(leader)}:{RPC}"
            r = sb.haadm("-a", addr, "-t", "5000", "status", "--json")
            self.assertEqual(r.returncode, 0, f"an admin locked out: {r.stdout}{r.stderr}")

            def reporting():
                n = sb.node(sb.status(addr=addr, local=True), f"node{other}")
                return n["agent"] == "reachable" and (n["report_age_ms"] or 10**9) < 2000
            sb.wait_for(reporting, 15, what=f"node{other}'s reports reaching the leader")
        finally:
            for c in held:
                c.close()
        self.assertRegex(self.log(leader), r"rpc-too-many-connections limit=64 "
                                           r"action=\"close the oldest operator connection\"")
        self.assert_cluster_carries_on(st["primary"])


if __name__ == "__main__":
    unittest.main()
