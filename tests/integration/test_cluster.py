"""The foundation end to end: the sandbox's three real MariaDB servers and agents, haadm status,
leader loss and rejoin, and a stopped agent."""

import os
import signal
import time
import unittest

from harness import Sandbox


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=21, snapshot_threshold=8)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        # every test starts from a whole, settled cluster with a writable primary (a test that
        # stopped an agent for longer than the write lease leaves the primary fenced until its
        # agent holds the lease again)
        self.sb.up()
        self.sb.wait_leader()

        def writable():
            s = self.sb.status()
            return s["primary"] and self.sb.node(s, s["primary"])["read_only"] is False
        self.sb.wait_for(writable, 15, what="a writable primary")

    def test_status_shows_the_cluster(self):
        sb = self.sb
        s = sb.status()
        self.assertEqual(s["_exit"], 0)
        self.assertTrue(s["authoritative"])
        self.assertEqual(s["cluster"], "sandbox")
        self.assertIn(s["leader"], ("node1", "node2", "node3"))
        self.assertGreaterEqual(s["term"], 1)
        self.assertEqual(s["primary"], "node1")
        self.assertGreaterEqual(s["epoch"], 1)
        self.assertEqual([n["name"] for n in s["nodes"]], ["node1", "node2", "node3"])
        roles = {n["name"]: n["role"] for n in s["nodes"]}
        self.assertEqual(roles, {"node1": "primary", "node2": "replica", "node3": "replica"})
        for n in s["nodes"]:
            self.assertEqual(n["db"], "up", n)
            self.assertEqual(n["agent"], "reachable", n)
            self.assertTrue(n["address"].startswith("127.0.0.2"))
            for key in ("name", "address", "role", "db", "read_only", "gtid", "lag_seconds", "agent"):
                self.assertIn(key, n)
        self.assertFalse(sb.node(s, "node1")["read_only"])
        for r in ("node2", "node3"):
            x = sb.node(s, r)
            self.assertTrue(x["read_only"])
            self.assertTrue(x["io_running"] and x["sql_running"], x)
            self.assertEqual(x["master"], f"{sb.ip(1)}:3306")

        # writes on the primary reach both replicas, and status shows equal GTID positions
        sb.tcp_sql(1, "CREATE TABLE IF NOT EXISTS sandbox.t (id INT PRIMARY KEY)")
        for i in range(50):
            r = sb.tcp_sql(1, f"INSERT INTO sandbox.t VALUES ({i})")
            self.assertEqual(r.returncode, 0, r.stderr)
        want = sb.sql(1, "SELECT @@gtid_current_pos")

        def converged():
            st = sb.status()
            g = [sb.node(st, n)["gtid"] for n in ("node1", "node2", "node3")]
            return g if g == [want] * 3 else None
        sb.wait_for(converged, 10, what=f"every node at GTID {want}")
        self.assertEqual(sb.sql(3, "SELECT COUNT(*) FROM sandbox.t"), "50")

        # the table for people names every node and the primary
        r = sb.haadm("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("primary node1 (epoch", r.stdout)
        for n in ("node1", "node2", "node3"):
            self.assertIn(n, r.stdout)

    def test_any_agent_answers_and_redirects_to_the_leader(self):
        sb = self.sb
        s = sb.status()
        leader = s["leader"]
        for n in (1, 2, 3):
            t = sb.status(addr=f"{sb.ip(n)}:7200")
            self.assertTrue(t["authoritative"])
            self.assertEqual(t["leader"], leader)
            self.assertEqual(t["served_by"], leader)  # followed the redirect
        # --local answers with the agent's own view, without redirect
        follower = next(n for n in (1, 2, 3) if f"node{n}" != leader)
        t = sb.status(addr=f"{sb.ip(follower)}:7200", local=True)
        self.assertEqual(t["served_by"], f"node{follower}")
        self.assertEqual(sb.node(t, f"node{follower}")["db"], "up")

    def test_leader_agent_killed_new_leader_and_rejoin(self):
        sb = self.sb
        s = sb.status()
        old = s["leader"]
        old_n = int(old[-1])
        term = s["term"]
        pid = sb.agent_pid(old_n)
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        others = tuple(n for n in (1, 2, 3) if n != old_n)
        s2 = sb.wait_leader(exclude=old, timeout=5, conf_nodes=others)
        elected = time.monotonic() - t0
        self.assertNotEqual(s2["leader"], old)
        self.assertGreater(s2["term"], term)
        self.assertEqual(s2["primary"], "node1")  # the agents' loss changes no database role
        sb.wait_for(lambda: sb.node(sb.status(conf_node=others[0]), old)["agent"] == "unreachable",
                 5, what=f"{old} shown unreachable")
        # the databases keep serving meanwhile
        r = sb.tcp_sql(1, "INSERT INTO sandbox.hello VALUES (1000 + FLOOR(RAND()*1000000), 'during') ")
        self.assertEqual(r.returncode, 0, r.stderr)
        print(f"new leader {s2['leader']} elected {elected:.2f}s after kill -9 of {old}")

        # restart: the agent rejoins and reports again
        sb.up()
        def rejoined():
            st = sb.status(conf_node=others[0])
            x = sb.node(st, old)
            return st["authoritative"] and x["agent"] == "reachable" and x["db"] == "up"
        sb.wait_for(rejoined, 10, what=f"{old} rejoined")
        st = sb.status()
        self.assertEqual(st["epoch"], s["epoch"])
        self.assertEqual(st["primary"], "node1")

    def test_agent_stopped_for_5s_breaks_nothing(self):
        sb = self.sb
        s = sb.status()
        epoch, leader = s["epoch"], s["leader"]
        n = int(leader[-1])  # the hardest case: stop the leader
        pid = sb.agent_pid(n)
        os.kill(pid, signal.SIGSTOP)
        try:
            others = tuple(x for x in (1, 2, 3) if x != n)
            s2 = sb.wait_leader(exclude=leader, timeout=5, conf_nodes=others)
            self.assertEqual(s2["primary"], "node1")
            time.sleep(max(0, 5 - 1))
        finally:
            os.kill(pid, signal.SIGCONT)
        # the stopped agent comes back as a follower; one leader; nothing else changed
        def settled():
            st = sb.status()
            ok = st["authoritative"] and all(x["agent"] == "reachable" and x["db"] == "up" for x in st["nodes"])
            return st if ok else None
        st = sb.wait_for(settled, 10, what="all agents reachable again")
        self.assertEqual(st["epoch"], epoch)
        self.assertEqual(st["primary"], "node1")
        leaders = {sb.status(addr=f"{sb.ip(x)}:7200")["leader"] for x in (1, 2, 3)}
        self.assertEqual(len(leaders), 1, leaders)
        self.assertIsNotNone(sb.agent_pid(n), "the stopped agent must still be running")

    def test_full_restart_keeps_state(self):
        """Stop every agent (SIGTERM) and start them again: raft state (and the snapshot taken with
        the low threshold) is reloaded, the primary and epoch survive."""
        sb = self.sb
        s = sb.status()
        for n in (1, 2, 3):
            os.kill(sb.agent_pid(n), signal.SIGTERM)
        sb.wait_for(lambda: all(sb.agent_pid(n) is None for n in (1, 2, 3)), 10, what="agents exited")
        for n in (1, 2, 3):
            with open(os.path.join(sb.node_dir(n), "agent.log")) as f:
                self.assertIn("raft-closed", f.read(), f"node{n} did not shut down cleanly")
        sb.up()
        st = sb.wait_leader()
        self.assertEqual(st["primary"], s["primary"])
        self.assertEqual(st["epoch"], s["epoch"])
        self.assertGreater(st["term"], s["term"])


if __name__ == "__main__":
    unittest.main()
