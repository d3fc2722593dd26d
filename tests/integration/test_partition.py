"""Partitions and the cases that must not cause a failover, with real processes. Network faults
are nftables rules keyed on each node's cgroup (netfault.py), bounded in time and removed."""

import json
import os
import signal
import subprocess
import time
import unittest

from harness import Sandbox
from netfault import NetFaults
from writer import Writer


class PartitionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = NetFaults(f"t{os.getpid()}", lambda n: f"127.0.0.{51 + n - 1}")
        cls.addClassCleanup(cls.net.close)
        cls.sb = Sandbox(first=51, cgroup_prefix=cls.net.cgroup_prefix)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.net.heal()
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")
        for n in (1, 2, 3):  # every process started inside its node's cgroup
            self.assertIn(self.sb.agent_pid(n), self.net.members(n))
            self.assertIn(self.sb.db_pid(n), self.net.members(n))

    def _begins(self):
        r = self.sb.haadm("events", "--json")
        return sum(1 for e in json.loads(r.stdout)["events"] if e["name"] == "failover-begin")

    def _assert_no_failover(self, what, epoch, begins, primary):
        time.sleep(3)  # longer than every confirmation delay that could still be running
        s = self.sb.status()
        self.assertEqual(s["epoch"], epoch, f"{what} caused a failover")
        self.assertEqual(self._begins(), begins, f"{what} began a failover")
        self.assertEqual(s["primary"], primary)
        self.assertFalse(self.sb.node(s, primary)["read_only"], f"{what} left the primary read-only")

    def test_no_false_positives(self):
        sb = self.sb
        s = sb.status()
        primary, epoch = s["primary"], s["epoch"]
        p = int(primary[-1])
        replica = next(n for n in (1, 2, 3) if n != p)
        begins = self._begins()

        # 1. a 2 s network cut between the primary and one replica
        self.net.cut(p, replica)
        time.sleep(2)
        self.assertGreater(self.net.dropped(), 0, "the cut dropped nothing")
        self.net.heal()
        self._assert_no_failover("a 2 s cut primary-replica", epoch, begins, primary)

        # 2. the primary's agent stopped for 3 s
        pid = sb.agent_pid(p)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(pid, signal.SIGCONT)
        self._assert_no_failover("SIGSTOP of the primary's agent", epoch, begins, primary)

        # 3. the primary's mariadbd stopped for less than the hang timeout (8 s)
        pid = sb.db_pid(p)
        os.kill(pid, signal.SIGSTOP)
        try:
            sb.wait_for(lambda: sb.node(sb.status(), primary)["db"] == "hung", 5,
                        what="the primary reported hung")
            time.sleep(2.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        self._assert_no_failover("a 4 s SIGSTOP of mariadbd", epoch, begins, primary)

        # 4. replication lag on a replica
        sb.sql(replica, "STOP SLAVE SQL_THREAD")
        try:
            sb.sql(p, "CREATE TABLE IF NOT EXISTS sandbox.lagtest (id INT PRIMARY KEY)")
            for i in range(0, 300, 50):
                sb.sql(p, "INSERT INTO sandbox.lagtest VALUES " +
                       ",".join(f"({j})" for j in range(i, i + 50)))
            time.sleep(3)
            sb.wait_for(lambda: sb.node(sb.status(), f"node{replica}")["sql_running"] is False, 5,
                        what="replica's SQL thread stopped")
        finally:
            sb.sql(replica, "START SLAVE SQL_THREAD")
        self._assert_no_failover("replication lag", epoch, begins, primary)

        # 5. the host at 100% CPU for 5 s (one busy process per core)
        burners = [subprocess.Popen(["/usr/bin/python3", "-c",
                                     "import time\nt=time.time()\nwhile time.time()-t<5: pass"])
                   for _ in range(os.cpu_count() or 2)]
        try:
            for b in burners:
                b.wait(timeout=20)
        finally:
            for b in burners:
                if b.poll() is None:
                    b.kill()
        self._assert_no_failover("100% CPU", epoch, begins, primary)

    def test_partitioned_primary_fences_itself(self):
        sb = self.sb
        s = sb.status()
        old = s["primary"]
        p = int(old[-1])
        others = [n for n in (1, 2, 3) if n != p]
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(100)
            self.net.isolate(p)
            t0 = time.monotonic()

            def promoted():
                st = sb.status(conf_node=others[0])
                np = st.get("primary")
                if np and np != old and sb.node(st, np)["read_only"] is False:
                    return st
                return None
            s2 = sb.wait_for(promoted, 20, interval=0.05, what="a primary on the majority side")
            took = time.monotonic() - t0
            new = s2["primary"]
            w.wait_acks(100)
            self.assertGreater(self.net.dropped(), 0, "the partition dropped nothing")
            # the isolated primary fenced itself: read-only (the test reaches it from outside
            # the partition)
            sb.wait_for(lambda: sb.sql(p, "SELECT @@global.read_only") == "1", 5,
                        what=f"{old} read-only")
        finally:
            w.stop()
            self.net.heal()
        print(f"partition of {old}: {new} writable {took:.2f}s later")
        # no write was acknowledged by the old primary once the new one had taken any
        first_new = min(t for t, name in w.ack_times if name == new)
        late = [t for t, name in w.ack_times if name == old and t >= first_new]
        self.assertEqual(late, [], "the old primary acknowledged writes after the promotion")
        missing = w.missing_on(int(new[-1]))
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:20]}")
        fo = sb.status(conf_node=others[0])["failover"]
        self.assertIn("lease expired", fo["fenced_by"])
        # healed: the old primary rejoins as a replica of the new one — unless it holds a write
        # that was in flight at the partition (binlogged, waiting for a semi-sync ack that never
        # came, killed by the fence, never acknowledged): then it is diverged, and only by such
        # writes.
        def settled():
            st = sb.status(conf_node=others[0])
            x = sb.node(st, old)
            if (x["role"] == "replica" and x["io_running"] and x["read_only"] is True and
                    x["master"] == f"{sb.ip(int(new[-1]))}:3306"):
                return "rejoined"
            if x["role"] == "diverged" and x["errant_gtid"] and x["read_only"] is True:
                return "diverged"
            return None
        outcome = sb.wait_for(settled, 30, what=f"{old} rejoined or diverged after healing")
        old_rows = set(int(v) for v in sb.sql(p, "SELECT id FROM sandbox.ledger").split())
        new_rows = set(int(v) for v in sb.sql(int(new[-1]), "SELECT id FROM sandbox.ledger").split())
        extra = old_rows - new_rows
        self.assertFalse(extra & set(w.acked), "the old primary kept acknowledged writes the new lacks")
        if outcome == "rejoined":
            self.assertEqual(extra, set())
        print(f"after healing, {old} {outcome}; writes only it has (never acknowledged): {sorted(extra)}")


if __name__ == "__main__":
    unittest.main()
