"""Automatic rejoin of a diverged old primary (docs/failover.md#rejoin-of-a-diverged-node).

The primary's host freezes (SIGSTOP of its mariadbd and its agent: a paused VM) while a client
commit is in flight, past the detection: the cluster fails over. Woken (SIGCONT), the old
primary holds that commit, which no replica received: it is diverged.

- semi-sync on (the default): the commit was never acknowledged, so the old primary's agent
  saves it as text under data_dir/errant, re-clones the node (taking a backup first when the
  newest one predates its own transactions) and it replicates again; no acknowledged write is
  lost and every table has the same checksum on the three nodes;
- semi-sync off (semi_sync_timeout_ms = 0, the primary promoted without it): its transactions
  may have been acknowledged; it stays diverged and says why.

How the in-flight commit is made certain: the replicas' IO threads are stopped (with the replicas
in maintenance, so that their agents leave them stopped) until the writer's commit is waiting
for an acknowledgement, then the host freezes and maintenance ends. That is the window a real
freeze hits by chance (binlogged, not yet sent); everything after it is the real path.

Real mariadbd and haagentd processes on 127.0.0.81-83."""

import os
import re
import signal
import stat
import time
import unittest

from harness import Sandbox
from writer import Writer


class RejoinTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=81)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 60, what="a whole cluster")

    # ---- helpers ----
    def primary(self):
        s = self.sb.status()
        return s["primary"], int(s["primary"][-1])

    def freeze_with_commit_in_flight(self, n, writer=None, inserts=0):
        """Holds the replicas' streams, lets a commit (writer) or `inserts` acknowledged rows go
        to node n only, then freezes node n's host. Returns the two other node numbers."""
        sb = self.sb
        others = [i for i in (1, 2, 3) if i != n]
        for i in others:
            r = sb.haadm("node", "maintenance", f"node{i}", "on")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for i in others:
            sb.wait_for(lambda i=i: sb.node(sb.status(), f"node{i}")["maintenance"], 10,
                        what=f"node{i} in maintenance")
            sb.sql(i, "STOP SLAVE IO_THREAD")
        if writer:
            # the writer's commit now waits for an acknowledgement that cannot come
            def stalled():
                a = len(writer.acked)
                time.sleep(0.6)
                return len(writer.acked) == a
            sb.wait_for(stalled, 10, what="the writer's commit waiting for an acknowledgement")
        for k in range(inserts):
            r = sb.tcp_sql(n, f"INSERT INTO sandbox.rj (id, v) VALUES ({1000 + k}, 'acked?')")
            self.assertEqual(r.returncode, 0, r.stderr)
        self.frozen = [sb.db_pid(n), sb.agent_pid(n)]
        for p in self.frozen:
            os.kill(p, signal.SIGSTOP)
        for i in others:
            r = sb.haadm("node", "maintenance", f"node{i}", "off", conf_node=i)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return others

    def wake(self):
        # the agent first: it must fence its server before anything else happens there
        for p in reversed(self.frozen):
            os.kill(p, signal.SIGCONT)
        return time.monotonic()

    def new_primary(self, old, others):
        def pred():
            for c in others:
                try:
                    s = self.sb.status(conf_node=c)
                except Exception:  # noqa: BLE001 - mid-election
                    continue
                p = s.get("primary")
                if p and p != old and s.get("authoritative") and \
                        self.sb.node(s, p)["read_only"] is False and \
                        (s.get("failover") or {}).get("phase") == "done":
                    return s
            return None
        return self.sb.wait_for(pred, 60, what=f"a primary other than {old}")

    def checksums(self, n):
        tables = self.sb.sql(n, "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM "
                                "information_schema.TABLES WHERE TABLE_SCHEMA = 'sandbox' "
                                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1").split()
        return {t: self.sb.sql(n, f"CHECKSUM TABLE {t}").split()[-1] for t in tables}

    # ---- 1. semi-sync on: the unacknowledged tail is saved and the node rejoins ----
    def test_1_frozen_primary_rejoins_by_itself(self):
        sb = self.sb
        old, n = self.primary()
        # a backup first (it will predate what the old primary writes next: its agent then
        # takes a newer one by itself before the re-clone)
        r = sb.haadm("backup", "run", "--wait", "--json", timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(50)
            others = self.freeze_with_commit_in_flight(n, writer=w)
            s = self.new_primary(old, others)
            new = s["primary"]
            w.wait_acks(30)
            t_wake = self.wake()
            # it finds itself diverged, saves the tail and re-clones: a replica again
            def replica():
                st = sb.status(conf_node=int(new[-1]))
                x = sb.node(st, old)
                return st if x["role"] == "replica" and x["io_running"] and \
                    x["master"] == f"{sb.ip(int(new[-1]))}:3306" and \
                    (x["rejoin"] or "").startswith("rejoined: ") else None
            st = sb.wait_for(replica, 300, interval=0.5, what=f"{old} replicating again")
            took = time.monotonic() - t_wake
            w.wait_acks(20)
        finally:
            w.stop()
        print(f"\n{old}: replicating again {took:.1f} s after its wake-up")
        x = sb.node(st, old)
        # what was saved, where, and that the history says so
        m = re.search(r"(\d+) errant transactions? \((0-%d-\d+(?:\.\.\d+)?)\) saved to (\S+)" % n,
                      x["errant_saved"] or "")
        self.assertTrue(m, x)
        path = m.group(3)
        self.assertTrue(path.startswith(os.path.join(sb.node_dir(n), "agent", "errant") + "/"),
                        path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            text = f.read()
        self.assertIn("INSERT INTO `sandbox`.`ledger`", text)
        # woken, it never wrote as a primary again: no heartbeat of its old epoch among them
        # (its agent once took the leader's ack for a lease at an epoch that had ended)
        self.assertNotIn("heartbeat", text)
        self.assertRegex(text, r"GTID 0-%d-\d+ trans" % n)
        self.assertRegex(x["rejoin"] or "", r"^rejoined: ")
        ev = [e for e in sb.events() if e["name"] == "errant-saved"]
        self.assertTrue(ev and ev[-1]["node"] == old and path in ev[-1]["detail"], ev)
        names = [e["name"] for e in sb.events()]
        self.assertIn("node-diverged", names)
        self.assertIn("node-converged", names)
        # the saved transaction was never acknowledged; every acknowledged one is everywhere
        q = int(new[-1])
        want = sb.sql(q, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: all(sb.sql(i, "SELECT @@gtid_current_pos") == want
                                for i in (1, 2, 3)), 60, what=f"every node at {want}")
        for i in (1, 2, 3):
            self.assertEqual(w.missing_on(i), [], f"node{i}")
        sums = [self.checksums(i) for i in (1, 2, 3)]
        self.assertIn("sandbox.ledger", sums[0])
        self.assertEqual(sums[0], sums[1])
        self.assertEqual(sums[0], sums[2])

    # ---- 2. semi-sync off: it stays diverged and says why ----
    def test_2_without_semi_sync_it_stays_diverged(self):
        sb = self.sb
        sb.restart_agents_with("[failover]\nsemi_sync_timeout_ms = 0\n")
        # the role moves to a node promoted without semi-sync (the fence of the old primary
        # turns it off there; the new primary's agent leaves it alone)
        old, n = self.primary()
        target = next(f"node{i}" for i in (3, 2, 1) if f"node{i}" != old)
        r = sb.haadm("failover", "--to", target, "--json", timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s = sb.wait_for(lambda: (lambda s: s if s["primary"] == target and
                                 sb.node(s, target)["read_only"] is False else None)(sb.status()),
                        30, what=f"{target} the primary")
        sb.wait_for(sb.whole, 30, what="a whole cluster")
        old, n = target, int(target[-1])
        self.assertEqual(sb.sql(n, "SELECT @@rpl_semi_sync_master_enabled"), "0")
        sb.tcp_sql(n, "CREATE TABLE IF NOT EXISTS sandbox.rj (id INT PRIMARY KEY, v TEXT)")
        sb.wait_for(sb.whole, 30, what="a whole cluster")
        # the table is on every node before their streams are held: the errant set is then
        # the three inserts alone (a "whole" status is a sample; it says nothing of positions)
        want = sb.sql(n, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: all(sb.sql(i, "SELECT @@gtid_current_pos") == want
                                for i in (1, 2, 3) if i != n), 30, what=f"every node at {want}")
        time.sleep(1)  # the agent samples its server writable, semi-sync off
        # the worst case: the primary's agent also leads (the coordinator freezes with it)
        sb.make_leader(old)
        # three writes acknowledged by node n alone, then its host freezes
        others = self.freeze_with_commit_in_flight(n, inserts=3)
        try:
            s = self.new_primary(old, others)
        finally:
            self.wake()
        new = s["primary"]

        def held():
            st = sb.status(conf_node=int(new[-1]))
            x = sb.node(st, old)
            return x if x["role"] == "diverged" and (x["rejoin"] or "").startswith("diverged:") \
                else None
        x = sb.wait_for(held, 60, interval=0.5, what=f"{old} diverged, with a reason")
        self.assertRegex(x["rejoin"], r"^diverged: 3 errant transactions \(0-%d-\d+\.\.\d+\) "
                                      r"and semi-sync was off when this node was primary" % n)
        self.assertIn("they may have been acknowledged to clients", x["rejoin"])
        self.assertIn(f"HINT: inspect them (mariadb-binlog", x["rejoin"])
        self.assertIn(f"haadm node reclone {old}", x["rejoin"])
        self.assertFalse(x["errant_saved"])
        self.assertFalse(os.path.exists(os.path.join(sb.node_dir(n), "agent", "errant")))
        # still diverged a while later: nothing was discarded
        time.sleep(5)
        x = sb.node(sb.status(conf_node=int(new[-1])), old)
        self.assertEqual(x["role"], "diverged")
        self.assertEqual(sb.sql(n, "SELECT COUNT(*) FROM sandbox.rj WHERE v = 'acked?'"), "3")
        # the table view and the history say it too
        r = sb.haadm("status", conf_node=int(new[-1]))
        self.assertIn(f"{old}: diverged: 3 errant transactions", r.stdout)
        ev = [e for e in sb.events() if e["name"] == "rejoin-held" and e["node"] == old]
        self.assertTrue(ev, sb.events())
        self.assertIn("semi-sync was off", ev[-1]["detail"])
        with open(os.path.join(sb.node_dir(n), "agent.log")) as f:
            self.assertIn("rejoin-held", f.read())


if __name__ == "__main__":
    unittest.main()
