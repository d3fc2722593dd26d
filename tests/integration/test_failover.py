"""Automatic failover with real mariadbd and haagentd: no acknowledged write lost, the old primary
fenced, replicas repointed, the old primary rejoining; and the cases that must not fail over."""

import os
import signal
import subprocess
import time
import unittest

from harness import Sandbox
from writer import Writer


def gtid(sb, n):
    return sb.sql(n, "SELECT @@gtid_current_pos")


class FailoverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=41)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        s = self.sb.wait_leader()
        # every node up, replicating from the primary, nobody diverged
        self.sb.wait_for(lambda: self.sb.whole(), 30, what="a whole cluster")

    def _wait_new_primary(self, old, timeout=15):
        def pred():
            s = self.sb.status(conf_node=1 if old != "node1" else 2)
            p = s.get("primary")
            if p and p != old and self.sb.node(s, p)["read_only"] is False:
                return s
            return None
        return self.sb.wait_for(pred, timeout, interval=0.05, what=f"a primary other than {old}")

    def _check_after(self, w, old, new):
        sb = self.sb
        n_new = int(new[-1])
        # every acknowledged write is on the new primary
        missing = w.missing_on(n_new)
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:20]}")
        # the other replica(s) follow the new primary and converge
        def converged():
            s = sb.status()
            want = gtid(sb, n_new)
            for x in s["nodes"]:
                if x["name"] in (new, old):
                    continue
                if x["master"] != f"{sb.ip(n_new)}:3306" or x["gtid"] != want:
                    return None
            return s
        sb.wait_for(converged, 15, what=f"replicas following {new}")
        ev = [e["name"] for e in self.sb.events()]
        for name in ("failover-begin", "old-primary-fenced", "candidate-chosen", "failover-done"):
            self.assertIn(name, ev)

    def _check_rejoin(self, old, new):
        sb = self.sb
        n_old, n_new = int(old[-1]), int(new[-1])
        sb.up()  # restarts what is missing
        def rejoined():
            s = sb.status()
            x = sb.node(s, old)
            return (x["role"] == "replica" and x["read_only"] is True and x["io_running"]
                    and x["master"] == f"{sb.ip(n_new)}:3306" and x["gtid"] == gtid(sb, n_new))
        sb.wait_for(rejoined, 30, what=f"{old} rejoined as a replica of {new}")
        # the old primary accepted no write of its own after it was fenced: its history is a
        # prefix of the new primary's
        self.assertEqual(sb.sql(n_old, "SELECT COUNT(*) FROM sandbox.ledger"),
                         sb.sql(n_new, "SELECT COUNT(*) FROM sandbox.ledger"))

    def test_0_fence_and_post_failover_hooks(self):
        """With a write lease far longer than the failover should take, an unreachable old
        primary can only be fenced by the fence hook; post_failover reports the outcome."""
        sb = self.sb
        calls = os.path.join(sb.dir, "hooks.log")
        fence = os.path.join(sb.dir, "fence.sh")
        post = os.path.join(sb.dir, "post.sh")
        with open(fence, "w") as f:
            f.write(f'#!/bin/sh\necho "fence $1 $2" >> {calls}\nexit 0\n')
        with open(post, "w") as f:
            f.write(f'#!/bin/sh\necho "post $1 $2 $3 $HAAGENT_EPOCH" >> {calls}\n')
        os.chmod(fence, 0o755)
        os.chmod(post, 0o755)
        self.sb.restart_agents_with("[failover]\nlease_ms = 20000\nsemi_sync_timeout_ms = 30000\n"
                                  f"[hooks]\nfence = {fence}\npost_failover = {post}\n")
        try:
            self.sb.wait_for(lambda: self.sb.whole(), 30, what="a whole cluster")
            Writer(sb).setup()
            s = sb.status()
            old = s["primary"]
            n_old = int(old[-1])
            os.kill(sb.agent_pid(n_old), signal.SIGKILL)
            os.kill(sb.db_pid(n_old), signal.SIGKILL)
            t0 = time.monotonic()
            s2 = self._wait_new_primary(old, timeout=15)
            took = time.monotonic() - t0
            self.assertLess(took, 15)  # far less than the 20 s lease: the hook fenced it
            fo = sb.status(conf_node=int(s2["primary"][-1]))["failover"]
            self.assertEqual(fo["fenced_by"], "fence hook succeeded")
            new = s2["primary"]
            def logged():
                with open(calls) as f:
                    text = f.read()
                return (f"fence {old} {sb.ip(n_old)}" in text and
                        f"post {old} {new} {fo['epoch']} {fo['epoch']}" in text)
            sb.wait_for(logged, 5, what="fence and post_failover hooks with their arguments")
        finally:
            self.sb.restart_agents_with("")
        self._check_rejoin(old, new)

    def test_1_kill_primary_mariadbd_under_load(self):
        sb = self.sb
        s = sb.status()
        old = s["primary"]
        epoch = s["epoch"]
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(100)
            os.kill(sb.db_pid(int(old[-1])), signal.SIGKILL)
            t0 = time.monotonic()
            s2 = self._wait_new_primary(old)
            took = time.monotonic() - t0
            w.wait_acks(100)
        finally:
            w.stop()
        new = s2["primary"]
        self.assertGreater(s2["epoch"], epoch)
        print(f"mariadbd kill -9: {new} writable {took:.2f}s later; {len(w.acked)} acked writes")
        self._check_after(w, old, new)
        fo = sb.status()["failover"]
        self.assertEqual(fo["phase"], "done")
        self.assertIn("nothing listens on its port", fo["fenced_by"])
        self._check_rejoin(old, new)

    def test_2_kill_whole_primary_node(self):
        sb = self.sb
        s = sb.status()
        old = s["primary"]
        n_old = int(old[-1])
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(100)
            os.kill(sb.agent_pid(n_old), signal.SIGKILL)
            os.kill(sb.db_pid(n_old), signal.SIGKILL)
            t0 = time.monotonic()
            s2 = self._wait_new_primary(old, timeout=20)
            took = time.monotonic() - t0
            w.wait_acks(100)
        finally:
            w.stop()
        new = s2["primary"]
        print(f"node kill -9: {new} writable {took:.2f}s later")
        self._check_after(w, old, new)
        fo = sb.status(conf_node=int(new[-1]))["failover"]
        self.assertTrue("lease expired" in fo["fenced_by"] or "fence hook" in fo["fenced_by"],
                        fo["fenced_by"])
        self._check_rejoin(old, new)

    def test_3_coordinator_killed_in_the_middle(self):
        """The coordinator's agent dies at the moment it begins a failover (a one-shot
        pre_failover hook kills it); the next coordinator finishes the job."""
        sb = self.sb
        marker = os.path.join(sb.dir, "coordinator-killed")
        hook = os.path.join(sb.dir, "kill-coordinator.sh")
        with open(hook, "w") as f:
            f.write(f"#!/bin/sh\n[ -e {marker} ] && exit 0\necho $PPID > {marker}\nkill -9 $PPID\n")
        os.chmod(hook, 0o755)
        roles = os.path.join(sb.dir, "roles.log")
        role_hook = os.path.join(sb.dir, "on-role-change.sh")
        with open(role_hook, "w") as f:
            f.write(f'#!/bin/sh\necho "$HAAGENT_NODE $1 $2 $3" >> {roles}\n')
        os.chmod(role_hook, 0o755)
        self.sb.restart_agents_with(f"[hooks]\npre_failover = {hook}\non_role_change = {role_hook}\n")
        try:
            self.sb.wait_for(lambda: self.sb.whole(), 30, what="a whole cluster")
            s = sb.status()
            old = s["primary"]
            n_old = int(old[-1])
            n_events = len([e for e in self.sb.events() if e["name"] == "failover-begin"])
            w = Writer(sb)
            w.setup()
            w.start()
            try:
                w.wait_acks(50)
                os.kill(sb.db_pid(n_old), signal.SIGKILL)
                sb.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker), 10,
                            what="the coordinator's pre_failover hook")
                with open(marker) as f:
                    dead = int(f.read())
                sb.wait_for(lambda: dead not in [sb.agent_pid(n) for n in (1, 2, 3)], 5,
                            what="the coordinator dead")
                # it restarts (as under systemd) while its successor carries on
                for n in (1, 2, 3):
                    if sb.agent_pid(n) is None:
                        sb.run_sandbox("start-agent", str(n))
                s2 = self._wait_new_primary(old, timeout=20)
                w.wait_acks(50)
            finally:
                w.stop()
            new = s2["primary"]
            self._check_after(w, old, new)
            # one failover, not two; and exactly one writable primary
            begins = [e for e in self.sb.events() if e["name"] == "failover-begin"]
            self.assertEqual(len(begins), n_events + 1)
            s3 = sb.status(conf_node=int(new[-1]))
            writable = [x["name"] for x in s3["nodes"] if x["read_only"] is False]
            self.assertEqual(writable, [new])
            print(f"coordinator (pid {dead}) killed at failover begin; {new} promoted by its successor")
            # on_role_change told the new primary its role, with the new epoch and its name
            def told():
                with open(roles) as f:
                    return f"{new} primary {s3['epoch']} {new}" in f.read()
            sb.wait_for(told, 5, what="on_role_change hook run on the new primary")
        finally:
            self.sb.restart_agents_with("")
        self._check_rejoin(old, new)


    def test_4_diverged_old_primary_is_kept_out(self):
        """An old primary holding a transaction the new primary lacks is marked diverged with the
        errant GTID set, and is never repointed automatically."""
        sb = self.sb
        s = sb.status()
        old = s["primary"]
        n_old = int(old[-1])
        # its commits on disk first: crash recovery (semi-sync slave role) drops committed
        # transactions whose InnoDB commit was not flushed yet — the replicas have them — and
        # a write below would then reuse such a GTID with other content, which no GTID shows
        # (docs/failover.md); the promotion's heartbeat write is often one of those
        sb.sql(n_old, "FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS")
        # take the old primary's agent away, so that it cannot fence or repoint anything yet
        os.kill(sb.agent_pid(n_old), signal.SIGKILL)
        os.kill(sb.db_pid(n_old), signal.SIGKILL)
        s2 = self._wait_new_primary(old, timeout=20)
        new = s2["primary"]
        # restart only its database and give it a transaction nobody else has (root bypasses
        # read_only, as a careless operator would)
        sb.run_sandbox("start-db", str(n_old))
        # (semi-sync off first: with no replica, the write would wait for an acknowledgement)
        sb.sql(n_old, "SET GLOBAL rpl_semi_sync_master_enabled=OFF; "
                      "INSERT INTO sandbox.hello VALUES (9999, 'errant')")
        errant_pos = sb.sql(n_old, "SELECT @@gtid_binlog_pos")
        sb.up()  # starts its agent

        def diverged():
            st = sb.status(conf_node=int(new[-1]))
            x = sb.node(st, old)
            return x if x["role"] == "diverged" and x["errant_gtid"] else None
        x = sb.wait_for(diverged, 20, what=f"{old} marked diverged")
        self.assertIn(errant_pos.split("-")[0] + "-", x["errant_gtid"])
        self.assertFalse(x["replicating"], "a diverged node must not be repointed")
        self.assertTrue(x["read_only"])
        ev = [e for e in self.sb.events() if e["name"] == "node-diverged"]
        self.assertTrue(ev and ev[-1]["node"] == old, f"{old}: {ev[-3:]}")
        time.sleep(2)
        self.assertFalse(sb.node(sb.status(conf_node=int(new[-1])), old)["replicating"])
        # Re-cloning the node (backups issue) is what brings it back; this test runs last so the
        # class needs no whole cluster afterwards.


if __name__ == "__main__":
    unittest.main()
