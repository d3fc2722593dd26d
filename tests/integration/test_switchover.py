"""Planned switchover (`haadm failover`), maintenance and pause, with real mariadbd and haagentd:
no acknowledged write lost over twenty switchovers under load, refusals that say why, rollback
when the target cannot catch up, and a coordinator killed in the middle."""

import json
import os
import signal
import subprocess
import time
import unittest

import pymysql

from harness import HAADM, Sandbox
from writer import Writer


class SwitchoverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=91)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")

    # ---- helpers ----
    def failover(self, *args, timeout=90):
        """Runs `haadm failover --json ARGS`; returns (exit status, parsed JSON)."""
        r = self.sb.haadm("failover", "--json", *args, timeout=timeout)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"haadm failover printed no JSON (exit {r.returncode}): "
                                 f"{r.stdout!r} {r.stderr!r}\n{self.sb.logs()}") from None
        return r.returncode, out

    def assert_refused(self, args, *texts):
        code, out = self.failover(*args)
        self.assertEqual(code, 14, out)
        self.assertEqual(out["result"], "refused", out)
        for t in texts:
            self.assertIn(t, out["message"])
        return out

    def n(self, name):
        return int(name[4:])

    def other_nodes(self, s):
        return [x["name"] for x in s["nodes"] if x["name"] != s["primary"]]

    def assert_one_writable(self):
        """Exactly one server is writable, and it is the cluster's primary."""
        def settled():
            s = self.sb.status()
            w = self.sb.writable_nodes()
            return (s, w) if s["authoritative"] and w == [s["primary"]] else None
        return self.sb.wait_for(settled, 30, what="exactly one writable server, the primary")[0]

    def converged(self, timeout=30):
        """Every node at the same GTID position, replicas replicating without error."""
        def pred():
            s = self.sb.whole()
            if not s:
                return None
            gtids = {x["gtid"] for x in s["nodes"]}
            errors = [x["last_error"] for x in s["nodes"] if x.get("last_error")]
            return s if len(gtids) == 1 and not errors else None
        return self.sb.wait_for(pred, timeout, what="every node converged")

    # ---- tests ----
    def test_0_dry_run_and_refusals(self):
        sb = self.sb
        s = sb.status()
        primary = s["primary"]
        a, b = self.other_nodes(s)
        code, out = self.failover("--dry-run")
        self.assertEqual(code, 0, out)
        self.assertEqual(out["result"], "dry_run")
        self.assertEqual(out["old_primary"], primary)
        self.assertIn(out["target"], (a, b))
        self.assertTrue(all(c["ok"] for c in out["checks"]), out["checks"])
        self.assertEqual(len(out["steps"]), 4)
        # the dry run changed nothing
        self.assertEqual(sb.status()["epoch"], s["epoch"])
        # text mode prints the checks and the plan
        r = sb.haadm("failover", "--dry-run", "--to", a)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("plan (switchover", r.stdout)
        self.assertIn(f"would switch over from {primary} to {a}", r.stdout)
        self.assert_refused(["--to", primary], "already the primary")
        self.assert_refused(["--to", "nosuchnode"], "no node named nosuchnode")
        # a target whose SQL thread is stopped
        sb.sql(self.n(a), "STOP SLAVE SQL_THREAD")
        try:
            sb.wait_for(lambda: sb.node(sb.status(), a)["sql_running"] is False, 10,
                        what=f"{a}'s SQL thread reported stopped")
            out = self.assert_refused(["--to", a], f"cannot switch over to {a}",
                                      "not both running")
            self.assertTrue(any(not c["ok"] and a in c["check"] for c in out["checks"]))
            # the automatic pick takes the other one
            code, out = self.failover("--dry-run")
            self.assertEqual((code, out["target"]), (0, b), out)
        finally:
            sb.sql(self.n(a), "START SLAVE SQL_THREAD")
        # a stopped target
        os.kill(sb.db_pid(self.n(b)), signal.SIGKILL)
        sb.wait_for(lambda: sb.node(sb.status(), b)["db"] != "up", 10,
                    what=f"{b}'s database reported down")
        self.assert_refused(["--to", b], "database down")
        self.assertEqual(sb.status()["primary"], primary)
        self.assertEqual(sb.writable_nodes(), [primary])
        # usage errors
        r = sb.haadm("failover", "--timeout", "abc")
        self.assertEqual(r.returncode, 2)
        r = sb.haadm("failover", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--dry-run", r.stdout)

    def test_1_twenty_alternating_switchovers_under_load(self):
        sb = self.sb
        w = Writer(sb)
        w.setup()
        w.start()
        epoch = sb.status()["epoch"]
        cycle = ["node1", "node2", "node3"]
        try:
            w.wait_acks(50)
            for i in range(20):
                s = sb.wait_for(sb.whole, 30, what=f"a whole cluster before switchover {i}")
                old = s["primary"]
                args = []
                if i % 2 == 0:  # named target, then the coordinator's own pick
                    target = cycle[(cycle.index(old) + 1) % 3]
                    args = ["--to", target]
                code, out = self.failover(*args)
                self.assertEqual(code, 0, f"switchover {i}: {out}\n{sb.logs()}")
                self.assertEqual(out["result"], "done")
                self.assertEqual(out["old_primary"], old)
                if args:
                    self.assertEqual(out["target"], target)
                self.assertEqual(out["epoch"], epoch + 1, "the epoch moves up by one each time")
                epoch = out["epoch"]
                new = out["target"]
                # the new primary recorded its epoch, and the writer carries on there
                hb = sb.sql(self.n(new), "SELECT epoch, node FROM haagent.heartbeat")
                self.assertEqual(hb.split(), [str(epoch), new])
                w.wait_acks(20)
                self.assertEqual(w.ack_times[-1][1], new)
        finally:
            w.stop()
        s = self.converged()
        self.assertEqual(s["epoch"], epoch)
        for x in s["nodes"]:
            missing = w.missing_on(self.n(x["name"]))
            self.assertEqual(missing, [], f"{x['name']} lacks acknowledged writes {missing[:10]}")
        print(f"20 switchovers: {len(w.acked)} acknowledged writes, none lost; "
              f"{len(w.errors)} client errors while the primary moved")
        ev = [e["name"] for e in sb.events()]
        self.assertIn("switchover-done", ev)
        self.assertNotIn("switchover-aborted", ev)
        self.assertNotIn("node-diverged", ev)

    def test_2_maintenance(self):
        sb = self.sb
        s = sb.status()
        primary = s["primary"]
        m, other = self.other_nodes(s)
        # never the primary: the role has to move first
        r = sb.haadm("node", "maintenance", primary, "on")
        self.assertEqual(r.returncode, 14, r.stdout + r.stderr)
        self.assertIn("haadm failover", r.stderr)
        r = sb.haadm("node", "maintenance", m, "on", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], "ok")
        try:
            s = sb.wait_for(lambda: (lambda s: s if sb.node(s, m)["maintenance"] else None)(
                sb.status()), 10, what=f"{m} shown in maintenance")
            self.assertIn("maintenance", sb.haadm("status").stdout)
            self.assertEqual(s["plan"]["candidate"], other)
            self.assert_refused(["--to", m], "in maintenance", "maintenance NODE off")
            # its agent leaves replication as the operator set it
            sb.sql(self.n(m), "STOP SLAVE")
            time.sleep(2)
            self.assertIs(sb.node(sb.status(), m)["io_running"], False)
            # its own outage triggers nothing
            begins = len([e for e in sb.events() if e["name"] == "failover-begin"])
            os.kill(sb.db_pid(self.n(m)), signal.SIGKILL)
            time.sleep(3)
            s = sb.status()
            self.assertEqual(s["primary"], primary)
            self.assertEqual(len([e for e in sb.events() if e["name"] == "failover-begin"]),
                             begins)
            sb.up()  # its database comes back, still in maintenance
            # the primary fails: the node in maintenance is never the one promoted
            os.kill(sb.db_pid(self.n(primary)), signal.SIGKILL)
            s = sb.wait_for(lambda: (lambda s: s if s["primary"] not in ("", primary) and
                                     sb.node(s, s["primary"])["read_only"] is False else None)(
                sb.status()), 20, what="automatic failover")
            self.assertEqual(s["primary"], other)
        finally:
            r = sb.haadm("node", "maintenance", m, "off")
        self.assertEqual(r.returncode, 0, r.stderr)
        sb.up()
        # out of maintenance, its agent repoints it to the primary
        s = self.converged()
        self.assertFalse(sb.node(s, m)["maintenance"])
        self.assertEqual(sb.node(s, m)["master"], f"{sb.ip(self.n(other))}:3306")
        ev = [e["name"] for e in sb.events()]
        self.assertIn("maintenance-on", ev)
        self.assertIn("maintenance-off", ev)

    def test_3_pause(self):
        sb = self.sb
        old = sb.status()["primary"]
        r = sb.haadm("pause", "--reason", "test window")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            s = sb.status()
            self.assertFalse(s["auto_failover"])
            self.assertEqual(s["pause_reason"], "test window")
            self.assertIn("PAUSED", sb.haadm("status").stdout)
            fo_id = (s["failover"] or {}).get("id")
            os.kill(sb.db_pid(self.n(old)), signal.SIGKILL)
            sb.wait_for(lambda: any(e["name"] == "failover-held-paused" for e in sb.events()),
                        10, what="the held failover reported")
            s = sb.status()
            self.assertEqual(s["primary"], old)
            self.assertEqual((s["failover"] or {}).get("id"), fo_id)
            self.assertIn("paused by an operator: test window", " ".join(s["plan"]["blockers"]))
            # a planned switchover needs a healthy primary: refused, saying why
            self.assert_refused([], "not healthy")
        finally:
            r = sb.haadm("resume")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = sb.wait_for(lambda: (lambda s: s if s["primary"] not in ("", old) and
                                 sb.node(s, s["primary"])["read_only"] is False else None)(
            sb.status()), 20, what="automatic failover after resume")
        self.assertTrue(s["auto_failover"])
        sb.up()
        self.converged()

    def _kill_coordinator_during(self, phase_reached, args):
        """Starts a switchover, kills -9 the coordinator's agent once the switchover reached one
        of phase_reached, restarts it a second later; returns (haadm exit, JSON, primary)."""
        sb = self.sb
        s = sb.status()
        leader = s["leader"]
        expected_id = ((s["failover"] or {}).get("id") or 0) + 1
        p = subprocess.Popen([HAADM, "-c", sb.conf(1), "failover", "--json"] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            def reached():
                fo = sb.status()["failover"] or {}
                return fo.get("id") == expected_id and fo.get("phase") in phase_reached
            sb.wait_for(reached, 15, interval=0.01, what=f"switchover in {phase_reached}")
            os.kill(sb.agent_pid(self.n(leader)), signal.SIGKILL)
            time.sleep(1)
            sb.up()
            out, err = p.communicate(timeout=90)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        res = json.loads(out)
        self.assertIn(p.returncode, (0, 14), err)
        self.assertIn(res["result"], ("done", "rolled_back"), res)
        s = self.assert_one_writable()
        fo = s["failover"]
        self.assertEqual(fo["id"], expected_id)
        self.assertIn(fo["phase"], ("done", "aborted"))
        self.assertEqual(s["primary"], res["target"] if res["result"] == "done"
                         else res["old_primary"])
        return res, s

    def test_4_coordinator_killed_mid_switchover(self):
        sb = self.sb
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(30)
            # 1. while the old primary drains: an open transaction holds the grace
            s = sb.status()
            hold = pymysql.connect(host=sb.ip(self.n(s["primary"])), port=3306, user="app",
                                   password="app", autocommit=False, connect_timeout=3)
            with hold.cursor() as c:
                c.execute("INSERT INTO sandbox.ledger (id) VALUES (-1)")
            res, s = self._kill_coordinator_during(("fencing",),
                                                   ["--grace", "4000", "--timeout", "8000"])
            print(f"coordinator killed while fencing: {res['result']}")
            try:
                hold.close()
            except Exception:  # noqa: BLE001 - killed by the fence
                pass
            self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")
            w.wait_acks(30)
            # 2. right after the old primary was fenced
            res, s = self._kill_coordinator_during(("fenced", "promoting", "done"), [])
            print(f"coordinator killed after fencing: {res['result']}")
            w.wait_acks(30)
        finally:
            w.stop()
        s = self.converged()
        missing = w.missing_on(self.n(s["primary"]))
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:10]}")
        # the transaction left open was never acknowledged, and never committed
        self.assertEqual(sb.sql(self.n(s["primary"]),
                                "SELECT COUNT(*) FROM sandbox.ledger WHERE id = -1"), "0")

    def test_5_rollback_when_target_cannot_catch_up(self):
        sb = self.sb
        s = sb.status()
        old = s["primary"]
        t = self.other_nodes(s)[0]
        nt = self.n(t)
        # the target applies with a 60 s delay: it cannot catch up in the 2 s budget
        sb.sql(nt, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=60; START SLAVE")
        changed = time.monotonic()
        try:
            # both threads back and the lag known (the IO thread reconnects after START
            # SLAVE; until then a switchover is refused, rightly, for "lag unknown"), in a
            # report made after the change (an older one still says "running")
            def replicating():
                x = sb.node(sb.status(), t)
                age = x["report_age_ms"]
                fresh = age is not None and time.monotonic() - age / 1000.0 > changed + 0.2
                return (fresh and x["sql_running"] and x["io_running"]
                        and x["lag_seconds"] is not None)
            sb.wait_for(replicating, 10, what=f"{t} replicating again")
            w = Writer(sb)
            w.setup()
            w.start()
            try:
                w.wait_acks(20)
                code, out = self.failover("--to", t, "--timeout", "2000")
                w.wait_acks(20)
            finally:
                w.stop()
            self.assertEqual(code, 14, out)
            self.assertEqual(out["result"], "rolled_back", out)
            self.assertIn(f"target {t} did not apply up to", out["detail"])
            s = self.assert_one_writable()
            self.assertEqual(s["primary"], old)
            self.assertEqual(s["failover"]["phase"], "aborted")
            self.assertEqual(w.ack_times[-1][1], old, "the old primary took writes again")
            self.assertEqual(w.missing_on(self.n(old)), [])
            # meanwhile the delayed replica falls behind: a switchover to it is refused
            sb.wait_for(lambda: (sb.node(sb.status(), t)["lag_seconds"] or 0) > 11, 30,
                        what=f"{t} lagging more than max_lag_ms")
            self.assert_refused(["--to", t], "lags", "max_lag_ms")
        finally:
            sb.sql(nt, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
        self.converged()
        self.assertIn("switchover-aborted", [e["name"] for e in sb.events()])

    def test_9_target_with_errant_transactions_refused(self):
        """Last: it leaves a node diverged."""
        sb = self.sb
        s = sb.status()
        t = self.other_nodes(s)[0]
        # a write made directly on the replica (root ignores read_only): the primary lacks it
        sb.sql(self.n(t), "CREATE DATABASE errant_on_replica")
        sb.wait_for(lambda: f"-{sb.sql(self.n(t), 'SELECT @@server_id')}-" in
                    sb.node(sb.status(), t)["gtid"], 10, what="the errant GTID reported")
        self.assert_refused(["--to", t], "transactions the primary lacks", "re-clone")
        self.assertEqual(sb.status()["primary"], s["primary"])


if __name__ == "__main__":
    unittest.main()
