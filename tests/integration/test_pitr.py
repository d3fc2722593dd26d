"""Point-in-time recovery from the binlog archive, with real mariadbd, mariadb-backup and
mariadb-binlog: restore to a time and to a GTID undoes a DROP TABLE; one restore spans a
failover (kill -9 of the primary under write load) with every acknowledged write before the
point present and nothing twice; an archive gap (binary logs purged while no archiver ran) is
detected, reported and refused."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import HAADM, Sandbox, query_datadir, wait_for
from writer import Writer

FIRST = int(os.environ.get("HA_PITR_TEST_FIRST", "191"))


class PitrTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")
        cls.tmp = tempfile.mkdtemp(prefix="haagent-pitr-")
        cls.addClassCleanup(subprocess.run, ["rm", "-rf", cls.tmp])

    def setUp(self):
        self.sb.up()
        self.sb.wait_for(self.sb.whole, 60, what="a whole cluster")

    # ---- helpers ----
    def haadm(self, *args, timeout=300):
        return subprocess.run([HAADM, "-c", self.sb.conf(1)] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def primary(self):
        return int(self.sb.status()["primary"][-1])

    def backup(self):
        r = self.haadm("backup", "run", "--wait", "--json")
        out = json.loads(r.stdout)
        self.assertEqual((r.returncode, out["result"]), (0, "done"), r.stdout + r.stderr)
        return out["id"]

    def archive(self):
        return self.sb.status().get("archive") or {}

    def wait_archived(self, timeout=60):
        """Until the archive's head is the primary's binary log position, asked of the server
        itself (a report may be a moment old)."""
        def pred():
            s = self.sb.status()
            a = s.get("archive") or {}
            pos = self.sb.sql(int(s["primary"][-1]), "SELECT @@gtid_binlog_pos")
            return a.get("head_gtid") == pos and a
        return self.sb.wait_for(pred, timeout, what="the archive up to the primary")

    def restore(self, *point, expect_ok=True):
        d = os.path.join(self.tmp, f"r{time.monotonic_ns()}")
        r = self.haadm("restore", *point, "--target-dir", d, "--json")
        out = json.loads(r.stdout) if r.stdout.strip() else {}
        if expect_ok:
            self.assertEqual((r.returncode, out.get("result")), (0, "restored"),
                             r.stdout + r.stderr)
        return d, r, out

    def query(self, datadir, sql):
        """Runs sql on a throwaway mariadbd started on datadir (stopped after)."""
        return query_datadir(self.tmp, datadir, sql)

    def point_now(self):
        """A time after everything archived, for a restore to "now": the archive holds all
        of it only once the primary's position was read (reported) after that time."""
        self.next_second()
        point = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        time.sleep(2)
        self.wait_archived()
        return point

    def next_second(self):
        time.sleep(1.05 - (time.time() % 1))

    # ---- tests ----
    def test_0_the_archive_follows_retention(self):
        """Slices before the oldest kept backup are removed; what remains still restores."""
        self.sb.restart_agents_with("[backup]\narchive_prune_ms = 1000\n")
        self.addCleanup(self.sb.restart_agents_with, "")
        p = self.primary()
        self.sb.sql(p, "CREATE TABLE sandbox.kept (id INT PRIMARY KEY)")
        for i in range(3):  # slices before the backups
            self.sb.sql(p, f"INSERT INTO sandbox.kept VALUES ({i})")
            time.sleep(2.2)
        first = self.backup()
        self.sb.sql(p, "INSERT INTO sandbox.kept VALUES (10)")
        time.sleep(2.2)
        self.wait_archived()
        r = self.haadm("backup", "policy", "--keep-full", "1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.addCleanup(self.haadm, "backup", "policy", "--keep-full", "0")
        second = self.backup()
        self.sb.wait_for(lambda: all(b["id"] != first or b["state"] == "deleted"
                                     for b in json.loads(self.haadm(
                                         "backup", "list", "--json").stdout)["backups"]),
                         60, what="retention deleting the first backup")
        self.sb.sql(p, "INSERT INTO sandbox.kept VALUES (20)")
        self.wait_archived()
        archive = os.path.join(self.sb.dir, "backups", "archive")

        def pruned():
            names = sorted(os.listdir(archive))
            return names and int(names[0][:12]) > 1 and names
        names = self.sb.wait_for(pruned, 60, what="slices before the kept backup removed")
        # the chain from the kept backup is whole: a restore to now works
        point = self.point_now()
        d, _, out = self.restore("--to-time", point)
        self.assertEqual(out["backup"], second)
        self.assertEqual(self.query(d, "SELECT COUNT(*) FROM sandbox.kept"), "5")
        # what is left is the chain from the kept backup on, and its list ends where
        # retention cut it
        listed = json.loads(self.haadm("binlog", "list", "--all", "--json").stdout)
        on_disk = sorted(os.listdir(archive))
        self.assertEqual(sorted(x["name"] for x in listed["slices"]), on_disk[:len(listed["slices"])])
        self.assertIsNotNone(listed["ended_at"])
        self.assertGreater(int(on_disk[0][:12]), int(names[0][:12]) - 1)

    def test_1_drop_table_undone_by_time_and_by_gtid(self):
        p = self.primary()
        self.sb.sql(p, "USE sandbox; CREATE TABLE sandbox.orders (id INT PRIMARY KEY, v VARCHAR(40)); "
                       "INSERT INTO sandbox.orders SELECT seq, MD5(seq) FROM seq_1_to_500")
        bid = self.backup()
        # after the backup: only the archive has these
        self.sb.sql(p, "USE sandbox; INSERT INTO sandbox.orders SELECT seq, MD5(seq) FROM seq_501_to_900; "
                       "UPDATE sandbox.orders SET v = 'changed' WHERE id % 7 = 0")
        # account statements replay too (the throwaway server's grant tables)
        self.sb.sql(p, "CREATE USER IF NOT EXISTS 'pitr_app'@'%' IDENTIFIED BY 'x'; "
                       "GRANT SELECT ON sandbox.* TO 'pitr_app'@'%'")
        want = self.sb.sql(p, "CHECKSUM TABLE sandbox.orders").split()[-1]
        self.next_second()
        point = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self.next_second()
        self.sb.sql(p, "DROP TABLE sandbox.orders")
        self.sb.sql(p, "CREATE TABLE sandbox.later (id INT PRIMARY KEY); "
                       "INSERT INTO sandbox.later VALUES (1), (2)")
        self.wait_archived()

        # the window reaches from the first backup to the archive's head
        lst = json.loads(self.haadm("backup", "list", "--json").stdout)
        self.assertLessEqual(lst["recoverable"]["from_backup"], bid)
        self.assertEqual(lst["recoverable"]["to_gtid"], lst["archive"]["head_gtid"])

        # the time noted before the drop
        d, _, out = self.restore("--to-time", point)
        self.assertEqual(out["backup"], bid)
        self.assertGreater(out["replayed"], 0)
        self.assertEqual(self.query(d, "CHECKSUM TABLE sandbox.orders").split()[-1], want)
        self.assertEqual(self.query(d, "SHOW TABLES FROM sandbox LIKE 'later'"), "")
        self.assertEqual(self.query(d, "SELECT COUNT(*) FROM mysql.user WHERE user = 'pitr_app'"),
                         "1")
        self.assertTrue(out["stopped_at_point"])

        # the drop, found by its statement, and the restore just before it
        r = self.haadm("binlog", "find", "DROP TABLE orders", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        matches = json.loads(r.stdout)["matches"]
        self.assertEqual(len(matches), 1, r.stdout)
        drop = matches[0]["gtid"]
        d, _, out = self.restore("--before-gtid", drop)
        self.assertEqual(self.query(d, "SELECT COUNT(*), SUM(v = 'changed') FROM sandbox.orders"),
                         "900\t128")
        self.assertEqual(self.query(d, "SHOW TABLES FROM sandbox LIKE 'later'"), "")
        dom, srv, seq = drop.split("-")
        self.assertEqual(out["position"], f"{dom}-{srv}-{int(seq) - 1}")
        # through the drop: the table is gone, the later writes are not there either
        d, _, out = self.restore("--to-gtid", drop)
        self.assertEqual(self.query(d, "SHOW TABLES FROM sandbox LIKE 'orders'"), "")
        self.assertEqual(self.query(d, "SHOW TABLES FROM sandbox LIKE 'later'"), "")
        self.assertEqual(out["last_gtid"], drop)
        # a restored datadir resumes at its position and replicates from nobody
        self.assertEqual(self.query(d, "SELECT @@gtid_slave_pos"), drop)
        self.assertEqual(self.query(d, "SHOW SLAVE STATUS"), "")
        # the whole archive reads back; a flipped byte in one slice is found and named
        r = self.haadm("binlog", "verify", "--json")
        v = json.loads(r.stdout)
        self.assertEqual((r.returncode, v["result"], v["damaged"]), (0, "passed", 0), r.stdout)
        self.assertGreater(v["transactions"], 0)
        archive = os.path.join(self.sb.dir, "backups", "archive")
        victim = sorted(os.listdir(archive))[0]
        chunk = os.path.join(archive, victim, "chunks", "00000000")
        with open(chunk, "r+b") as f:
            f.seek(40)
            byte = f.read(1)
            f.seek(40)
            f.write(bytes([byte[0] ^ 0x01]))
        try:
            r = self.haadm("binlog", "verify", "--json")
            v = json.loads(r.stdout)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(v["damaged"], 1)
            self.assertIn(victim, v["first_problem"])
        finally:
            with open(chunk, "r+b") as f:
                f.seek(40)
                f.write(byte)
        # a malformed point is refused before anything is read
        for bad in ("2026-12-03 10:00:00+1:30", "1970-01-01 00:00:00+02:00", "yesterday"):
            r = self.haadm("restore", "--to-time", bad, "--target-dir", d + "-bad")
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("haadm restore:", r.stderr)
        # a GTID the archive never saw is refused by name
        _, r, _ = self.restore("--to-gtid", f"{dom}-{srv}-{int(seq) + 100000}", expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not in the archive", r.stdout + r.stderr)

    def test_2_one_restore_spans_a_failover(self):
        self.backup()
        w = Writer(self.sb, table="sandbox.pitr_ledger")
        w.setup()
        w.start()
        try:
            w.wait_acks(200)
            old = self.sb.status()["primary"]
            os.kill(self.sb.db_pid(int(old[-1])), signal.SIGKILL)
            s = self.sb.wait_new_primary(old, 60)
            new = s["primary"]
            acked_before = len(w.acked)
            w.wait_acks(acked_before + 200)
        finally:
            w.stop()
        self.sb.up()  # the old primary's mariadbd back (it rejoins or stays diverged)
        a = self.wait_archived()
        servers = {int(x["server_id"]) for x in json.loads(
            self.haadm("binlog", "list", "--all", "--json").stdout)["slices"]}
        self.assertIn(int(new[-1]), servers)
        self.assertIn(int(old[-1]), servers)
        # a point after every write: one restore through both primaries' binary logs
        point = self.point_now()
        d, _, out = self.restore("--to-time", point)
        rows = self.query(d, "SELECT id FROM sandbox.pitr_ledger")
        have = {int(x) for x in rows.split()}
        missing = [i for i in w.acked if i not in have]
        self.assertEqual(missing, [], f"acknowledged writes missing after the restore: {out}")
        # nothing twice (a duplicate would have stopped the replay on the primary key) and
        # the position is the new primary's
        pos = self.sb.sql(int(new[-1]), "SELECT @@gtid_binlog_pos")
        self.assertEqual(out["position"], pos)
        self.assertEqual(a["gaps"], 0)
        # every agent gone (the cluster lost, the repository left): the repository alone
        # gives the catalog and the archive's head, and the same restore
        for n in (1, 2, 3):
            if self.sb.agent_pid(n):
                os.kill(self.sb.agent_pid(n), signal.SIGTERM)
        self.sb.wait_for(lambda: all(self.sb.agent_pid(n) is None for n in (1, 2, 3)), 20,
                         what="every agent stopped")
        r = self.haadm("binlog", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("read from the repository", r.stderr)
        last = json.loads(r.stdout)["slices"][0]["last_gtid"]
        d, _, out = self.restore("--to-gtid", last)
        self.assertEqual(out["position"], pos)
        rows = self.query(d, "SELECT COUNT(*) FROM sandbox.pitr_ledger")
        self.assertGreaterEqual(int(rows), len(w.acked))

    def test_3_a_gap_is_detected_and_refused(self):
        before = self.backup()
        p = self.primary()
        self.sb.sql(p, "CREATE TABLE sandbox.pre_gap (id INT PRIMARY KEY); "
                       "INSERT INTO sandbox.pre_gap VALUES (1)")
        self.next_second()
        self.before_gap = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self.next_second()
        # archived before the gap: the point above lies inside what the archive holds
        self.sb.sql(p, "INSERT INTO sandbox.pre_gap VALUES (2)")
        self.wait_archived()
        agents = [self.sb.agent_pid(n) for n in (1, 2, 3)]
        # no archiver may run: every agent frozen, the leader's mariadb-binlog killed
        dumps = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                 if self._parent(pid) in agents and self._comm(pid) == "mariadb-binlog"]
        self.assertEqual(len(dumps), 1, "exactly one archiver streams")
        for pid in agents:
            os.kill(pid, signal.SIGSTOP)
        try:
            os.kill(dumps[0], signal.SIGKILL)
            self.sb.sql(p, "CREATE TABLE sandbox.gap_lost (id INT PRIMARY KEY); "
                           "INSERT INTO sandbox.gap_lost VALUES (1)")
            self.sb.sql(p, "FLUSH BINARY LOGS")
            last = self.sb.sql(p, "SHOW BINARY LOGS").splitlines()[-1].split()[0]

            def purged():
                # a dump thread still reading an old file keeps it (the killed archiver's
                # lingers until the server writes to its dead socket)
                self.sb.sql(p, f"PURGE BINARY LOGS TO '{last}'")
                return self.sb.sql(p, "SHOW BINARY LOGS").splitlines()[0].split()[0] == last
            wait_for(purged, 20, interval=0.5, what="the old binary logs purged")
        finally:
            for pid in agents:
                os.kill(pid, signal.SIGCONT)
        self.sb.sql(p, "INSERT INTO sandbox.gap_lost VALUES (2)")
        a = self.sb.wait_for(lambda: (self.archive().get("gaps") or 0) >= 1 and self.archive(),
                             90, what="the gap reported")
        self.assertIn("purged", a["last_gap"])
        self.assertIn("archive-gap", [e["name"] for e in self.sb.events()])
        listed = json.loads(self.haadm("binlog", "list", "--json").stdout)["slices"]
        self.assertTrue(any(s["gap"] for s in listed), listed)
        # from the backup before the gap to a point after it: refused, with the reason
        self.wait_archived()
        self.next_second()
        point = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        _, r, _ = self.restore(str(before), "--to-time", point, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("gap", r.stdout + r.stderr)
        # ...and to a point before the gap it still works
        d, _, out = self.restore(str(before), "--to-time", self.before_gap)
        self.assertEqual(out["backup"], before)
        self.assertEqual(self.query(d, "SELECT COUNT(*) FROM sandbox.pre_gap"), "1")
        # no window crosses the gap; a backup after it opens the next one
        lst = json.loads(self.haadm("backup", "list", "--json").stdout)
        self.assertIsNone(lst["recoverable"])
        after = self.backup()
        lst = json.loads(self.haadm("backup", "list", "--json").stdout)
        self.assertEqual(lst["recoverable"]["from_backup"], after)
        self.sb.sql(p, "INSERT INTO sandbox.gap_lost VALUES (3)")
        self.wait_archived()
        point = self.point_now()
        d, _, _ = self.restore("--to-time", point)
        self.assertEqual(self.query(d, "SELECT COUNT(*) FROM sandbox.gap_lost"), "3")

    def test_4_an_errant_tail_is_kept_aside(self):
        """The old primary logs (and the archive receives) transactions no replica gets; after
        the failover they are errant: listed, never replayed."""
        self.backup()
        old = self.sb.status()["primary"]
        n_old = int(old[-1])
        others = [n for n in (1, 2, 3) if n != n_old]
        self.sb.sql(n_old, "CREATE TABLE sandbox.errant_t (id INT PRIMARY KEY)")
        self.wait_archived()
        for n in others:  # their agents leave replication as it is set
            r = self.haadm("node", "maintenance", f"node{n}", "on")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pos = self.sb.sql(n_old, "SELECT @@gtid_binlog_pos")
        for n in others:
            self.sb.wait_for(lambda: self.sb.sql(n, "SELECT @@gtid_slave_pos") == pos, 20,
                             what=f"node{n} caught up")
            self.sb.sql(n, "STOP SLAVE IO_THREAD")
        fork = pos
        # semi-sync waits for an acknowledgement no replica can send: the clients hang (never
        # acknowledged: the in-flight tail) while the binary log, and the archive, have them
        clients = [subprocess.Popen(
            ["mariadb", "--no-defaults", "-uroot",
             f"--socket={self.sb.node_dir(n_old)}/mariadbd.sock", "-e",
             f"INSERT INTO sandbox.errant_t VALUES {v}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for v in ("(1), (2), (3)", "(4)")]
        self.addCleanup(lambda: [c.kill() for c in clients])
        self.wait_archived()
        errant_end = self.sb.sql(n_old, "SELECT @@gtid_binlog_pos")
        os.kill(self.sb.agent_pid(n_old), signal.SIGKILL)
        os.kill(self.sb.db_pid(n_old), signal.SIGKILL)
        for n in others:
            def off(n=n):
                r = subprocess.run([HAADM, "-c", self.sb.conf(n), "node", "maintenance",
                                    f"node{n}", "off"], capture_output=True, text=True,
                                   timeout=30)
                return r.returncode == 0
            self.sb.wait_for(off, 30, interval=1, what=f"node{n} out of maintenance")
        s = self.sb.wait_new_primary(old, 90)
        n_new = int(s["primary"][-1])
        self.sb.sql(n_new, "INSERT INTO sandbox.errant_t VALUES (100)")

        def archived_new():
            st = self.sb.status(conf_node=n_new)
            a = st.get("archive") or {}
            return (a.get("head_gtid") == self.sb.sql(n_new, "SELECT @@gtid_binlog_pos")
                    and a)
        a = self.sb.wait_for(archived_new, 60, what="the archive on the new primary")
        self.assertGreaterEqual(a["errant"], 1)
        self.assertIn("errant", a["last_errant"])
        events = json.loads(subprocess.run(
            [HAADM, "-c", self.sb.conf(n_new), "events", "--json"], capture_output=True,
            text=True, timeout=15).stdout)["events"]
        self.assertIn("archive-errant", [e["name"] for e in events])
        r = subprocess.run([HAADM, "-c", self.sb.conf(n_new), "binlog", "list", "--all",
                            "--json"], capture_output=True, text=True, timeout=60)
        self.assertTrue(any(x["errant"] for x in json.loads(r.stdout)["slices"]), r.stdout)
        # find says which statements a restore will never replay
        def find(text):
            r = subprocess.run([HAADM, "-c", self.sb.conf(n_new), "binlog", "find", text,
                                "--json"], capture_output=True, text=True, timeout=60)
            return json.loads(r.stdout)["matches"]
        errant = find("INSERT INTO sandbox.errant_t VALUES (4)")
        self.assertEqual([m["errant"] for m in errant], [True], errant)
        main_line = find("INSERT INTO sandbox.errant_t VALUES (100)")
        self.assertEqual([m["errant"] for m in main_line], [False], main_line)
        # a restore to now: the new primary's row, none of the old primary's errant ones
        point = self.point_now()
        d = os.path.join(self.tmp, "errant")
        r = subprocess.run([HAADM, "-c", self.sb.conf(n_new), "restore", "--to-time", point,
                            "--target-dir", d, "--json"], capture_output=True, text=True,
                           timeout=300)
        out = json.loads(r.stdout)
        self.assertEqual((r.returncode, out["result"]), (0, "restored"), r.stdout + r.stderr)
        self.assertEqual(self.query(d, "SELECT GROUP_CONCAT(id) FROM sandbox.errant_t"), "100")
        self.assertEqual(out["position"], self.sb.sql(n_new, "SELECT @@gtid_binlog_pos"))
        # a point named by an errant transaction is refused, never taken for the main line's
        dom, srv, seq = fork.split("-")
        errant_first = f"{dom}-{srv}-{int(seq) + 1}"
        self.assertNotEqual(errant_end, fork)
        r = subprocess.run([HAADM, "-c", self.sb.conf(n_new), "restore", "--before-gtid",
                            errant_first, "--target-dir", d + "-2"], capture_output=True,
                           text=True, timeout=300)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stderr, "not on the archive's main line|not in the archive")

    @staticmethod
    def _parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _comm(pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return None


if __name__ == "__main__":
    unittest.main()
