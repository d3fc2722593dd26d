"""Safety under ordinary production faults, each a regression test of a failure seen before:

- the agent's login stops working on a healthy primary (a rotated password, a connection
  limit): no failover, never two writable primaries;
- the primary crashes while the replicas apply a long DDL, with semi-sync acknowledged writes
  queued behind it in their relay logs: the new primary applies them all before taking writes;
- GTID positions spanning many domains with large sequence numbers: a switchover and a failover
  complete;
- the candidate dies while it is being promoted: a new failover picks another node;
- a configured fence hook gates promotion (an expired lease alone is not enough);
- a hung primary that its agent cannot fence through SQL is stopped by its agent;
- a server killed in the middle of RESET SLAVE ALL (its master.info names relay log files that
  are gone) is repointed and replicates again;
- a failover with no replica that can be promoted ends when the old primary's server is back
  with everything the replicas have: it takes its role back (found by the simulator,
  tests/sim); not when its crash recovery rolled back what it had acknowledged.

Real mariadbd and haagentd processes on 127.0.0.131-133."""

import json
import os
import signal
import threading
import time
import unittest

import pymysql

from harness import Sandbox
from writer import Writer


class SafetyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=131)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 40, what="a whole cluster")

    # ---- helpers ----
    def _primary(self):
        s = self.sb.status()
        return s["primary"], int(s["primary"][-1]), s["epoch"]

    def _wait_new_primary(self, old, timeout):
        return self.sb.wait_new_primary(old, timeout)

    def _count(self, name, events=None):
        return len([e for e in (events or self.sb.events()) if e["name"] == name])

    def _watch_writable(self, stop, seen):
        """Samples @@read_only of all three servers until stop is set; records any sample with
        more than one writable node."""
        while not stop.is_set():
            w = self.sb.writable_nodes()
            if len(w) > 1:
                seen.append((time.monotonic(), w))
            time.sleep(0.2)

    def _agent_user_sql(self, n, stmt):
        self.sb.sql(n, f"SET SESSION sql_log_bin=0; {stmt}")

    def _kill_agent_sessions(self, n):
        ids = self.sb.sql(n, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='haagent'")
        for i in ids.split():
            try:
                self.sb.sql(n, f"KILL {i}")
            except AssertionError:
                pass  # gone meanwhile

    # ---- 1. the agent's login on a healthy primary ----
    def test_0_agent_login_lost_on_healthy_primary(self):
        """A DBA rotates the agent's password on the primary (outside the binlog) and its
        session drops. The probe sees 'Access denied' (1045): the server is up and serving its
        clients, so nothing fails over; the status and the events say what is wrong."""
        sb = self.sb
        old, n, epoch = self._primary()
        with open(os.path.join(sb.dir, "haagent.password")) as f:
            password = f.read().strip()
        begins = self._count("failover-begin")
        w = Writer(sb)
        w.setup()
        w.start()
        stop, double = threading.Event(), []
        watcher = threading.Thread(target=self._watch_writable, args=(stop, double), daemon=True)
        watcher.start()
        try:
            w.wait_acks(30)
            self._agent_user_sql(n, "ALTER USER 'haagent'@'127.0.0.%' IDENTIFIED BY 'rotated'")
            self._kill_agent_sessions(n)

            def unusable():
                x = sb.node(sb.status(), old)
                return x if x["db"] == "unusable" else None
            x = sb.wait_for(unusable, 10, what=f"{old} reported unusable")
            self.assertIn("1045", x["db_error"])
            # long past confirm_ms, stream_timeout_ms and the lease: still no failover
            acked = len(w.acked)
            time.sleep(6)
            s = sb.status()
            self.assertEqual(s["primary"], old)
            self.assertEqual(s["epoch"], epoch)
            self.assertEqual(self._count("failover-begin"), begins)
            self.assertGreater(len(w.acked), acked + 20, "the primary stopped taking writes")
            self.assertEqual(sb.writable_nodes(), [old])
            self.assertGreaterEqual(self._count("db-unusable"), 1)
            # the same with a connection limit (1226) instead of a password
            self._agent_user_sql(n, f"ALTER USER 'haagent'@'127.0.0.%' IDENTIFIED BY '{password}' "
                                    "WITH MAX_USER_CONNECTIONS 1")
            sb.wait_for(lambda: sb.node(sb.status(), old)["db"] == "up", 10,
                        what=f"{old} up again with the password restored")
            # the one connection the agent's user may have: taken by another client the moment
            # the agent's own session is killed
            hog = None
            for _ in range(100):
                self._kill_agent_sessions(n)
                try:
                    hog = pymysql.connect(host=sb.ip(n), port=3306, user="haagent",
                                          password=password, connect_timeout=2)
                    break
                except pymysql.err.OperationalError:
                    time.sleep(0.01)
            self.assertIsNotNone(hog, "could not take the agent user's only connection")
            try:
                def limited():
                    x = sb.node(sb.status(), old)
                    return x if x["db"] == "unusable" else None
                x = sb.wait_for(limited, 10, what=f"{old} unusable through the connection limit")
                self.assertIn("1226", x["db_error"])
                time.sleep(4)
                self.assertEqual(sb.status()["epoch"], epoch)
                self.assertEqual(sb.writable_nodes(), [old])
            finally:
                hog.close()
                self._agent_user_sql(n, "ALTER USER 'haagent'@'127.0.0.%' WITH MAX_USER_CONNECTIONS 0")
            sb.wait_for(lambda: sb.node(sb.status(), old)["db"] == "up", 10,
                        what=f"{old} up again")
            w.wait_acks(20)
        finally:
            stop.set()
            watcher.join(5)
            w.stop()
            self._agent_user_sql(n, f"ALTER USER 'haagent'@'127.0.0.%' IDENTIFIED BY '{password}' "
                                    "WITH MAX_USER_CONNECTIONS 0")
        self.assertEqual(double, [], f"two writable nodes: {double[:3]}")
        self.assertEqual(w.missing_on(n), [])
        self.assertEqual(sb.status()["epoch"], epoch)

    # ---- 2. a long DDL in the relay logs when the primary dies ----
    def test_1_primary_dies_while_replicas_apply_a_long_ddl(self):
        """A long ALTER replicates; writes acknowledged by semi-sync queue behind it in the
        replicas' relay logs; the primary crashes. With apply_timeout_ms at 2 s (it used to bound
        the relay-log apply, after which the rest was thrown away), the new primary still applies
        everything before it takes writes: nothing acknowledged is lost and the record says
        lost 0."""
        sb = self.sb
        sb.restart_agents_with("[failover]\napply_timeout_ms = 2000\n")
        old, n, _ = self._primary()
        sb.sql(n, "CREATE TABLE IF NOT EXISTS sandbox.big (id INT PRIMARY KEY, pad CHAR(200)) "
                  "ENGINE=InnoDB; TRUNCATE sandbox.big; "
                  "INSERT INTO sandbox.big SELECT seq, REPEAT('x', 200) FROM sandbox.seq_1_to_500000",
               timeout=120)
        w = Writer(sb)
        w.setup()
        sb.wait_for(lambda: len({sb.sql(i, "SELECT @@gtid_current_pos") for i in (1, 2, 3)}) == 1,
                    60, what="replicas caught up with the table")
        w.start()
        others = [i for i in (1, 2, 3) if i != n]
        try:
            w.wait_acks(20)
            t0 = time.monotonic()
            sb.sql(n, "ALTER TABLE sandbox.big FORCE, ALGORITHM=COPY", timeout=300)
            ddl = time.monotonic() - t0

            def queued():
                """both replicas in the ALTER with acknowledged writes received behind it"""
                for i in others:
                    st = sb.sql(i, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                                   "USER='system user' AND INFO LIKE 'ALTER TABLE%'")
                    if st == "0":
                        return False
                    cur = sb.sql(i, "SELECT @@gtid_slave_pos")
                    io = sb.io_pos(i)
                    if not io or int(io.split("-")[-1]) < int(cur.split("-")[-1]) + 20:
                        return False
                return True
            print(f"ALTER took {ddl:.1f}s on the primary")
            sb.wait_for(queued, ddl + 10, interval=0.2,
                        what="acknowledged writes queued behind the ALTER on both replicas")
            acked = list(w.acked)
            os.kill(sb.db_pid(n), signal.SIGKILL)
            t1 = time.monotonic()
            s2 = self._wait_new_primary(old, timeout=ddl * 3 + 30)
            took = time.monotonic() - t1
            w.wait_acks(20, timeout=30)
        finally:
            w.stop()
            sb.restart_agents_with("")
        new = s2["primary"]
        print(f"ALTER took {ddl:.1f}s on the primary; {new} writable {took:.1f}s after the crash")
        missing = w.missing_on(int(new[-1]))
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:20]}")
        self.assertTrue(set(acked) <= set(w.acked))
        fo = sb.status()["failover"]
        self.assertEqual(fo["lost_count"], 0, fo)
        sb.up()

    # ---- 3. GTID positions with many domains ----
    def test_2_many_gtid_domains(self):
        """35 replication domains with 7-digit sequence numbers: a planned switchover and then a
        failover complete (the switchover used to stay in 'fencing' forever)."""
        sb = self.sb
        old, n, _ = self._primary()
        stmts = ["CREATE TABLE IF NOT EXISTS sandbox.domains (d INT PRIMARY KEY)"]
        for d in range(1, 36):
            stmts.append(f"SET SESSION gtid_domain_id={d}, gtid_seq_no={1000000 + d * 7919}; "
                         f"INSERT INTO sandbox.domains VALUES ({d})")
        sb.sql(n, "; ".join(stmts))
        pos = sb.sql(n, "SELECT @@gtid_binlog_pos")
        self.assertGreaterEqual(pos.count(","), 35)
        self.assertGreater(len(pos), 400)
        sb.wait_for(lambda: all(sb.sql(i, "SELECT @@gtid_current_pos") == pos for i in (1, 2, 3)),
                    20, what="every node at the many-domain position")
        target = f"node{n % 3 + 1}"
        r = sb.haadm("failover", "--to", target, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s = sb.status()
        self.assertEqual(s["primary"], target)
        self.assertEqual(s["failover"]["phase"], "done")
        sb.wait_for(sb.whole, 30, what="a whole cluster after the switchover")
        # then a crash of the new primary
        nt = int(target[-1])
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(20)
            os.kill(sb.db_pid(nt), signal.SIGKILL)
            s2 = self._wait_new_primary(target, timeout=30)
            w.wait_acks(20)
        finally:
            w.stop()
        new = s2["primary"]
        self.assertEqual(w.missing_on(int(new[-1])), [])
        self.assertEqual(s2["failover"]["lost_count"], 0)
        self.assertGreaterEqual(sb.node(s2, new)["gtid"].count(","), 35)
        sb.up()

    # ---- 4. the candidate dies while promoting ----
    def test_3_candidate_killed_while_promoting(self):
        """Both replicas apply with a 4 s delay, so the chosen candidate spends seconds applying
        its relay log in 'promoting'. Killing it then supersedes the failover: the other replica
        is promoted, with every acknowledged write (it kept its relay log meanwhile)."""
        sb = self.sb
        old, n, _ = self._primary()
        others = [i for i in (1, 2, 3) if i != n]
        for i in others:
            sb.sql(i, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=4; START SLAVE")
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(60)
            os.kill(sb.db_pid(n), signal.SIGKILL)

            def promoting():
                s = sb.status(conf_node=others[0])
                fo = s.get("failover") or {}
                return s if fo.get("phase") == "promoting" and s.get("primary") else None
            s = sb.wait_for(promoting, 20, interval=0.05, what="a candidate being promoted")
            cand = s["primary"]
            nc = int(cand[-1])
            self.assertTrue(sb.node(s, cand)["read_only"])
            os.kill(sb.db_pid(nc), signal.SIGKILL)
            survivor = [i for i in others if i != nc][0]
            s2 = self._wait_new_primary(cand, timeout=40)
            self.assertEqual(s2["primary"], f"node{survivor}")
            # one database left: semi-sync writes wait for a replica, so bring the others back
            sb.up()
            w.wait_acks(20, timeout=40)
        finally:
            w.stop()
        missing = w.missing_on(survivor)
        self.assertEqual(missing, [], f"acknowledged writes lost: {missing[:20]}")
        ev = [e["name"] for e in sb.events()]
        self.assertIn("failover-superseded", ev)
        for i in (1, 2, 3):
            try:
                sb.sql(i, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
            except AssertionError:
                pass  # not running yet
        sb.up()
        for i in (1, 2, 3):
            if i != survivor:
                sb.sql(i, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")

    # ---- 5. the fence hook gates promotion ----
    def test_4_fence_hook_gates_promotion(self):
        """With a fence hook configured, an expired write lease alone does not let the
        coordinator promote: it waits (and says so) until the hook succeeds."""
        sb = self.sb
        allow = os.path.join(sb.dir, "fence-allowed")
        hook = os.path.join(sb.dir, "fence-gate.sh")
        with open(hook, "w") as f:
            f.write(f"#!/bin/sh\n[ -e {allow} ] && exit 0\nexit 1\n")
        os.chmod(hook, 0o755)
        sb.restart_agents_with(f"[hooks]\nfence = {hook}\n")
        try:
            old, n, epoch = self._primary()
            os.kill(sb.agent_pid(n), signal.SIGKILL)
            os.kill(sb.db_pid(n), signal.SIGKILL)
            other = 1 if n != 1 else 2
            sb.wait_for(lambda: (sb.status(conf_node=other).get("failover") or {}).get("phase")
                        == "fencing", 15, what="a failover waiting for the fence")
            time.sleep(6)  # far past lease_ms + an election timeout
            s = sb.status(conf_node=other)
            self.assertEqual(s["failover"]["phase"], "fencing", s["failover"])
            self.assertFalse(s["primary"])
            self.assertTrue(any("fence hook" in b for b in s["plan"]["blockers"]), s["plan"])
            open(allow, "w").close()
            s2 = self._wait_new_primary(old, timeout=20)
            self.assertEqual(s2["failover"]["fenced_by"], "fence hook succeeded")
        finally:
            if os.path.exists(allow):
                os.unlink(allow)
            sb.up()
            sb.restart_agents_with("")

    # ---- 6. a hung primary its agent cannot fence through SQL ----
    def test_5_hung_primary_is_stopped_by_its_agent(self):
        """mariadbd frozen (SIGSTOP) past the hang timeout: a hung server is no fencing proof,
        so the old primary's agent stops it itself (db_stop_command, then SIGKILL by
        db_pid_file), and that is what lets the failover go on."""
        sb = self.sb
        old, n, epoch = self._primary()
        pid = sb.db_pid(n)
        w = Writer(sb)
        w.setup()
        w.start()
        try:
            w.wait_acks(30)
            os.kill(pid, signal.SIGSTOP)
            s2 = self._wait_new_primary(old, timeout=40)
            w.wait_acks(20)
        finally:
            w.stop()
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        new = s2["primary"]
        self.assertIn("its agent stopped it", s2["failover"]["fenced_by"])
        sb.wait_for(lambda: sb.db_pid(n) is None, 10, what=f"{old}'s mariadbd gone")
        self.assertEqual(w.missing_on(int(new[-1])), [])
        ev = [e for e in sb.events() if e["name"] == "old-primary-fenced"]
        self.assertIn("stopped it", ev[-1]["detail"])
        sb.up()

    # ---- 7. a server killed in the middle of RESET SLAVE ALL ----
    def test_6_replica_whose_relay_log_vanished_rejoins(self):
        """A candidate killed while it detached (RESET SLAVE ALL deletes the relay log files
        before master.info) restarts with master.info naming files that are gone: every CHANGE
        MASTER fails with 1201 until the configuration is reset. Found by the soak: the node
        stayed a replica replicating from nobody forever. Its agent must reset and repoint."""
        sb = self.sb
        _, n, _ = self._primary()
        r = [i for i in (1, 2, 3) if i != n][0]
        data = os.path.join(sb.node_dir(r), "data")
        sb.run_sandbox("stop-db", str(r))
        relays = [f for f in os.listdir(data) if f.startswith("mariadbd-relay-bin.0")]
        self.assertTrue(relays, os.listdir(data))
        for f in relays:
            os.unlink(os.path.join(data, f))
        self.assertTrue(os.path.exists(os.path.join(data, "master.info")))
        sb.run_sandbox("start-db", str(r))
        sb.sql(n, "CREATE TABLE IF NOT EXISTS sandbox.relaygone (x INT PRIMARY KEY); "
                  "REPLACE INTO sandbox.relaygone VALUES (1)")

        def replicating():
            try:
                return sb.sql(r, "SELECT COUNT(*) FROM sandbox.relaygone").strip() == "1"
            except AssertionError:
                return False
        sb.wait_for(replicating, 30, what=f"node{r} replicating again")
        sb.wait_for(sb.whole, 30, what="a whole cluster")
        with open(os.path.join(sb.node_dir(r), "agent.log")) as f:
            self.assertIn("RESET SLAVE ALL first", f.read())
        sb.sql(n, "DROP TABLE sandbox.relaygone")

    def _both_replicas_in_maintenance_then_kill(self, write_while_killed):
        sb = self.sb
        old, n, epoch = self._primary()
        others = [i for i in (1, 2, 3) if i != n]
        for i in others:
            r = sb.haadm("node", "maintenance", f"node{i}", "on")
            self.assertEqual(r.returncode, 0, r.stderr)
        w = Writer(sb)
        w.setup()
        w.start()
        w.wait_acks(30)
        if not write_while_killed:
            w.stop()
            want = sb.sql(n, "SELECT @@global.gtid_binlog_pos")
            for i in others:  # the replicas have everything, and the primary flushed it
                sb.wait_for(lambda: sb.sql(i, "SELECT @@global.gtid_current_pos") == want, 10,
                            what=f"node{i} caught up")
            time.sleep(1.5)
        os.kill(sb.db_pid(n), signal.SIGKILL)

        def waiting():
            s = sb.status(conf_node=others[0])
            fo = s.get("failover") or {}
            return s if fo.get("phase") == "fenced" else None
        s = sb.wait_for(waiting, 20, what="the failover fenced, waiting")
        self.assertIsNone(s["primary"])
        sb.run_sandbox("start-db", str(n))  # restarted, read-only as configured
        return old, n, epoch, others, w

    def _positions(self, s):
        """What each server holds and the coordinator's last word, for a failure message."""
        sb = self.sb
        out = {"failover": s.get("failover"),
               "reports": {x["name"]: {k: x.get(k) for k in ("gtid_current", "gtid_io_pos",
                                                              "diverged", "errant_gtid",
                                                              "read_only", "db")}
                           for x in s["nodes"]}}
        for i in (1, 2, 3):
            try:
                out[f"node{i}"] = (sb.sql(i, "SELECT @@gtid_current_pos, @@gtid_binlog_pos, "
                                             "@@gtid_slave_pos"), sb.io_pos(i))
            except AssertionError as e:
                out[f"node{i}"] = str(e)
        return json.dumps(out, indent=1)

    def test_7_old_primary_takes_its_role_back(self):
        """Both replicas in maintenance (never promoted), the primary's mariadbd killed with
        nothing in flight: the failover waits, fenced, with no eligible replica; once the
        server is back, read-only, with everything the replicas have, the old primary takes its
        role back (the failover ends 'aborted') instead of waiting for an operator for ever."""
        sb = self.sb
        old, n, epoch, others, w = self._both_replicas_in_maintenance_then_kill(False)
        try:
            def back():
                s = sb.status(conf_node=others[0])
                p = s.get("primary")
                return s if p == old and not sb.node(s, p)["read_only"] else None
            s = sb.wait_for(back, 30, what=f"{old} writable again")
            self.assertEqual(s["failover"]["phase"], "aborted")
            self.assertIn("takes its role back", s["failover"]["detail"])
            self.assertGreater(s["epoch"], epoch)
            self.assertEqual(w.missing_on(n), [])
            self.assertIn("failover-aborted", [e["name"] for e in sb.events()])
            self.assertEqual(sb.writable_nodes(), [old])
        finally:
            for i in others:
                sb.haadm("node", "maintenance", f"node{i}", "off")

    def test_8_restarted_primary_without_what_replicas_have_is_not_handed_back(self):
        """The same, killed while clients write: its crash recovery (init-rpl-role=SLAVE) may
        roll back transactions it had acknowledged, which the replicas received (measured: the
        last acknowledged write of a run). It must not take its role back then; once a replica
        leaves maintenance it is promoted, with every acknowledged write (the one that received
        most, when only one received the old primary's in-flight tail)."""
        sb = self.sb
        old, n, epoch, others, w = self._both_replicas_in_maintenance_then_kill(True)
        try:
            time.sleep(3)
            s = sb.status(conf_node=others[0])
            fo = s.get("failover") or {}
            if fo.get("phase") == "aborted":
                # its recovery kept everything this time: handed back, nothing lost
                missing = w.missing_on(n)
                if missing:
                    self.fail(f"handed back without {missing}: {self._positions(s)}")
                return
            self.assertEqual(fo.get("phase"), "fenced", fo)
            self.assertIsNone(s["primary"])
            # both leave maintenance: one of them may have received a transaction (the old
            # primary's in-flight tail) the other lacks, and only it can then be promoted
            # without an operator accepting the loss
            for i in others:
                sb.haadm("node", "maintenance", f"node{i}", "off")
            s2 = self._wait_new_primary(old, timeout=30)
            self.assertIn(s2["primary"], [f"node{i}" for i in others])
            w.wait_acks(10, timeout=30)
        finally:
            w.stop()
            for i in others:
                sb.haadm("node", "maintenance", f"node{i}", "off")
        self.assertEqual(w.missing_on(int(s2["primary"][-1])), [])

if __name__ == "__main__":
    unittest.main()
