"""Salvage from a crashed primary's binlog (docs/failover.md, "Salvage").

Asynchronous replication (semi-sync off on the primary), both replicas' replication streams cut
for 2 s under write load, then the primary's mariadbd killed (kill -9; its host and agent live):
the writes acknowledged in those 2 s exist only in the dead server's binlog. The old primary's
agent reads them from its local binlog files and applies them to the candidate before it takes
writes: every acknowledged write is on the new primary, and the failover record says what was
salvaged. Without salvage ([failover] salvage = no) the same fault loses them, and the record
says so: that is the control.

Real mariadbd and haagentd processes on 127.0.0.161-163, each node in a cgroup of its own so
that nftables can cut one TCP service between nodes."""

import os
import signal
import time
import unittest

from harness import Sandbox
from netfault import NetFaults
from writer import Writer

FIRST = 161


class SalvageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = NetFaults(f"v{os.getpid()}", lambda n: f"127.0.0.{FIRST + n - 1}")
        cls.addClassCleanup(cls.net.close)
        cls.sb = Sandbox(first=FIRST, cgroup_prefix=cls.net.cgroup_prefix)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.net.heal()
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 40, what="a whole cluster")

    def _primary(self):
        s = self.sb.status()
        return s["primary"], int(s["primary"][-1])

    def _crash_with_unreplicated_writes(self, table):
        """Writes with the replicas' streams cut, then kill -9 of the primary's mariadbd.
        Returns (old name, old node number, the writer, how many acks came while cut)."""
        sb = self.sb
        old, n = self._primary()
        replicas = [i for i in (1, 2, 3) if i != n]
        sb.sql(n, "SET GLOBAL rpl_semi_sync_master_enabled=OFF")
        w = Writer(sb, table=table)
        w.setup()
        w.start()
        w.wait_acks(20)
        for r in replicas:
            self.net.cut_port(r, n, 3306)
        before = len(w.acked)
        time.sleep(2.0)
        os.kill(sb.db_pid(n), signal.SIGKILL)
        during = len(w.acked) - before
        dropped = self.net.dropped()
        self.net.heal()
        self.assertGreater(dropped, 0, "the cut dropped nothing")
        return old, n, w, during

    def _failover_after_crash(self, table):
        """The crash above, then the failover, with the writer going on against the new
        primary. Returns (the status, the writer, the old primary's number)."""
        old, n, w, during = self._crash_with_unreplicated_writes(table)
        self.assertGreater(during, 5, "too few writes while the streams were cut")
        try:
            s = self.sb.wait_new_primary(old, timeout=60)
            w.wait_acks(10, timeout=40)
        finally:
            w.stop()
        return s, w, n

    def test_salvaged_nothing_lost(self):
        sb = self.sb
        s, w, n = self._failover_after_crash("sandbox.salvage_on")
        old = f"node{n}"
        new = int(s["primary"][-1])
        fo = s["failover"]
        self.assertEqual(fo["salvage"], "done", fo)
        self.assertGreater(fo["salvaged_count"], 5, fo)
        self.assertEqual(w.missing_on(new), [], "acknowledged writes lost despite salvage")
        self.assertEqual(fo["lost_count"], 0, fo)
        names = [e["name"] for e in sb.events()]
        self.assertIn("failover-salvaged", names)
        # the old primary comes back and replicates: it has nothing the new primary lacks
        sb.up()
        sb.wait_for(sb.whole, 60, what="the old primary rejoined as a replica")
        s2 = sb.status()
        self.assertEqual(sb.node(s2, old)["role"], "replica")
        # ...with every acknowledged row: MariaDB's crash recovery may have dropped a salvaged
        # transaction there, and a replica skips events carrying its own server id
        sb.wait_for(lambda: w.missing_on(n) == [], 30, what=f"{old} holding every row")

    def test_without_salvage_the_loss_is_recorded(self):
        """The control (runs last: it leaves the old primary diverged, with transactions
        nobody else has, for the class cleanup)."""
        sb = self.sb
        sb.restart_agents_with("[failover]\nsalvage = no\n")
        s, w, n = self._failover_after_crash("sandbox.salvage_off")
        new = int(s["primary"][-1])
        fo = s["failover"]
        self.assertEqual(fo["salvage"], "none", fo)
        missing = w.missing_on(new)
        self.assertGreater(len(missing), 0, "the control lost nothing: the fault is vacuous")
        self.assertGreater(fo["lost_count"], 0, fo)


if __name__ == "__main__":
    unittest.main()
