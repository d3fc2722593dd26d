"""Backups with real mariadbd and mariadb-backup: jobs run on the least-loaded replica and never
on the primary, a full + differential + incremental chain restores into a datadir whose tables
match the source, damage and a wrong key are refused, a backup killed midway leaves nothing in
the catalog or the repository, and retention deletes exactly what the policy no longer keeps."""

import glob
import hashlib
import hmac
import json
import re
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import HAADM, Sandbox, wait_for

FIRST = int(os.environ.get("HA_BACKUP_TEST_FIRST", "121"))  # another range for a second run
TABLES = ("sandbox.bk_a", "sandbox.bk_b")


class BackupTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")
        p = cls.primary()
        cls.sb.sql(p, "USE sandbox; CREATE TABLE IF NOT EXISTS sandbox.bk_a (id INT PRIMARY KEY, k INT, "
                      "c CHAR(120), pad CHAR(60), KEY (k)); "
                      "INSERT INTO sandbox.bk_a SELECT seq, seq % 1000, REPEAT(CHAR(65 + seq % 26), "
                      "120), MD5(seq) FROM seq_1_to_20000; "
                      "CREATE TABLE IF NOT EXISTS sandbox.bk_b (id INT PRIMARY KEY, v TEXT)")

    @classmethod
    def primary(cls):
        return int(cls.sb.status()["primary"][-1])

    def setUp(self):
        self.sb.up()
        self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")

    # ---- helpers ----
    def haadm(self, *args, conf=None, timeout=300):
        cmd = [HAADM, "-c", conf or self.sb.conf(1)] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def run_backup(self, *args):
        r = self.haadm("backup", "run", "--wait", "--json", *args)
        out = json.loads(r.stdout)
        self.assertEqual((r.returncode, out["result"]), (0, "done"), r.stdout + r.stderr)
        return self.record(out["id"])

    def catalog(self):
        r = self.haadm("backup", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["backups"]

    def record(self, bid):
        return next(b for b in self.catalog() if b["id"] == bid)

    def repo(self):
        return os.path.join(self.sb.dir, "backups")

    def resign(self, text):
        """A manifest signed again as haagent does with the repository key (docs/backup.md):
        HMAC-SHA-256 of everything before the mac line, under HMAC-SHA-256(master key,
        "haagent manifest mac v1")."""
        with open(os.path.join(self.sb.dir, "backup.key")) as f:
            master = bytes.fromhex(f.readline().strip())
        body = text[:text.rindex("mac ")]
        k = hmac.new(master, b"haagent manifest mac v1", hashlib.sha256).digest()
        return body + "mac " + hmac.new(k, body.encode(), hashlib.sha256).hexdigest() + "\n"

    def checksums(self, sql):
        return {t: sql(f"CHECKSUM TABLE {t}").split()[-1] for t in TABLES}

    def converged(self, p):
        """Every node at the primary's binlog position, as read from the primary itself."""
        want = self.sb.sql(p, "SELECT @@gtid_binlog_pos")

        def pred():
            s = self.sb.whole()
            return s if s and {x["gtid"] for x in s["nodes"]} == {want} else None
        self.sb.wait_for(pred, 30, what=f"every node at {want}")
        return want

    def start_mariadbd(self, datadir):
        sock = os.path.join(datadir, "t.sock")
        p = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={datadir}",
                              f"--socket={sock}", "--skip-networking", "--user=root",
                              "--skip-slave-start", f"--log-error={datadir}/t.err",
                              f"--pid-file={datadir}/t.pid"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.poll() is None and (p.kill(), p.wait())))

        def sql(q):
            r = subprocess.run(["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "-N",
                                "-B", "-e", q], capture_output=True, text=True, timeout=30)
            if r.returncode:
                raise AssertionError(r.stderr)
            return r.stdout.strip()
        wait_for(lambda: sql("SELECT 1") == "1", 60, what="mariadbd on the restored datadir")
        return sql

    # ---- tests ----
    def test_0_runs_on_the_least_loaded_replica(self):
        sb = self.sb
        s = sb.status()
        primary = s["primary"]
        b = self.run_backup()
        self.assertNotEqual(b["node"], primary)
        self.assertIn("least-loaded healthy replica", b["detail"])
        self.assertEqual(b["type"], "full")
        self.assertGreater(b["bytes_in"], b["bytes_stored"])  # compressed
        self.assertTrue(os.path.isfile(os.path.join(self.repo(), "backups", b["name"],
                                                    "manifest")))
        # load one replica: the other is chosen
        replicas = [x["name"] for x in s["nodes"] if x["name"] != primary]
        busy = replicas[0]
        stop = threading.Event()

        def sleeper():
            while not stop.is_set():
                subprocess.run(["mariadb", "--no-defaults", "-uroot",
                                f"--socket={sb.node_dir(int(busy[-1]))}/mariadbd.sock", "-e",
                                "SELECT SLEEP(1)"], capture_output=True, timeout=10)
        threads = [threading.Thread(target=sleeper, daemon=True) for _ in range(12)]
        for t in threads:
            t.start()
        try:
            sb.wait_for(lambda: sb.node(sb.status(), busy)["threads_running"] >= 8, 10,
                        what=f"{busy} loaded")
            b2 = self.run_backup("--type", "full")
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertEqual(b2["node"], replicas[1], b2["detail"])
        # an incremental continues its chain on the server that took its full backup (its
        # pages' LSNs mean nothing on another server)
        b4 = self.run_backup("--type", "incremental")
        self.assertEqual((b4["node"], b4["parent"]), (b2["node"], b2["id"]), b4["detail"])
        self.assertIn(f"continues the chain of backup {b2['id']} on {b2['node']}", b4["detail"])
        # never the primary unless allowed
        r = self.haadm("backup", "run", "--node", primary)
        self.assertEqual(r.returncode, 14)
        self.assertIn("allow_primary", r.stderr)
        r = self.haadm("backup", "run", "--type", "weekly")
        self.assertEqual(r.returncode, 12)

    def test_1_chain_restores_to_the_same_tables(self):
        sb = self.sb
        p = self.primary()
        full = self.run_backup("--type", "full")
        sb.sql(p, "USE sandbox; UPDATE sandbox.bk_a SET k = k + 1 WHERE id % 7 = 0; "
                  "INSERT INTO sandbox.bk_b SELECT seq, REPEAT('x', seq % 500) FROM seq_1_to_3000")
        diff = self.run_backup("--type", "differential")
        self.assertEqual(diff["parent"], full["id"])
        sb.sql(p, "USE sandbox; DELETE FROM sandbox.bk_a WHERE id % 11 = 0; "
                  "INSERT INTO sandbox.bk_b SELECT seq + 3000, 'y' FROM seq_1_to_500")
        gtid = self.converged(p)
        want = self.checksums(lambda q: sb.sql(p, q))
        inc = self.run_backup("--type", "incremental")
        self.assertEqual(inc["parent"], diff["id"])
        self.assertEqual(inc["gtid"], gtid)
        d = tempfile.mkdtemp(prefix="haagent-restore-", dir=sb.dir)
        target = os.path.join(d, "datadir")
        r = self.haadm("restore", str(inc["id"]), "--target-dir", target, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("chain of 3", json.loads(r.stdout)["detail"])
        sql = self.start_mariadbd(target)
        self.assertEqual(self.checksums(sql), want)
        self.assertEqual(sql("SELECT COUNT(*) FROM sandbox.bk_b"), "3500")
        # the drill does the same by itself and records it
        r = self.haadm("backup", "verify", str(inc["id"]), "--drill", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # and replays the binlog archive onto it, checking the tables again
        self.assertRegex(json.loads(r.stdout)["detail"],
                         r"the binlog archive replayed onto it \(\d+ transactions")
        rec = sb.wait_for(lambda: (lambda b: b if b["verified"] != "never" else None)(
            self.record(inc["id"])), 10, what="the drill recorded in the catalog")
        self.assertEqual((rec["verified"], rec["drilled"]), ("passed", True))
        self.assertIn("CHECK TABLE passed", rec["verify_detail"])
        self.assertRegex(rec["verify_detail"],
                         r"checksums match those recorded at backup time on \d+ tables")
        # the manifest holds the source's checksums at the backup's position
        path = os.path.join(self.repo(), "backups", inc["name"], "manifest")
        with open(path) as f:
            manifest = f.read()
        sums = dict(line.split(" ", 2)[:0:-1] for line in manifest.splitlines()
                    if line.startswith("checksum "))
        self.assertEqual(sums["`sandbox`.`bk_a`"], want["sandbox.bk_a"])
        self.assertEqual(sums["`sandbox`.`bk_b`"], want["sandbox.bk_b"])
        # the manifest is authenticated: an edited one is refused (the recorded checksums
        # changed here), and so is one signed again with the repository key, because the
        # catalog recorded the hash of the one written at backup time
        bad = manifest.replace(f"checksum {want['sandbox.bk_a']} `sandbox`.`bk_a`",
                               "checksum 12345 `sandbox`.`bk_a`")
        self.assertNotEqual(bad, manifest)
        self.assertEqual(inc["manifest_sha256"],
                         hashlib.sha256(manifest.encode()).hexdigest())
        try:
            with open(path, "w") as f:
                f.write(bad)
            r = self.haadm("backup", "verify", str(inc["id"]), "--json")
            self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
            self.assertIn("manifest fails authentication", json.loads(r.stdout)["detail"])
            with open(path, "w") as f:
                f.write(self.resign(bad))
            drills = set(glob.glob("/tmp/haagent-drill-*"))
            r = self.haadm("backup", "verify", str(inc["id"]), "--drill", "--json")
            # refused before any tool ran: no scratch directory is left behind
            self.assertEqual(set(glob.glob("/tmp/haagent-drill-*")), drills)
            self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
            self.assertIn("hash differs from the catalog's", json.loads(r.stdout)["detail"])
        finally:
            with open(path, "w") as f:
                f.write(manifest)
        # as written at backup time, it verifies again
        self.assertEqual(self.resign(manifest), manifest)
        r = self.haadm("backup", "verify", str(inc["id"]))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_2_damage_and_wrong_key_are_refused(self):
        b = self.run_backup()
        r = self.haadm("backup", "verify", str(b["id"]))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        chunk = os.path.join(self.repo(), "backups", b["name"], "chunks", "00000001")
        with open(chunk, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0x01]))
        try:
            r = self.haadm("backup", "verify", str(b["id"]))
            self.assertEqual(r.returncode, 5)
            self.assertIn("chunk 1: SHA-256 mismatch", r.stderr)
            self.sb.wait_for(lambda: self.record(b["id"])["verified"] == "failed", 10,
                             what="the failed verify recorded")
            target = os.path.join(tempfile.mkdtemp(dir=self.sb.dir), "d")
            r = self.haadm("restore", str(b["id"]), "--target-dir", target)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("chunk 1", r.stderr)
            # nothing half-restored is left where a server could be started on it
            self.assertEqual(os.listdir(os.path.dirname(target)), [])
        finally:
            with open(chunk, "r+b") as f:
                f.seek(100)
                f.write(byte)
        # a wrong master key
        key = os.path.join(self.sb.dir, "wrong.key")
        with open(key, "w") as f:
            f.write("00" * 32 + "\n")
        os.chmod(key, 0o600)
        conf = os.path.join(self.sb.dir, "wrongkey.conf")
        with open(self.sb.conf(1)) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace(os.path.join(self.sb.dir, "backup.key"), key))
        r = self.haadm("backup", "verify", str(b["id"]), conf=conf)
        self.assertEqual(r.returncode, 5)
        self.assertIn("wrong key", r.stderr)
        r = self.haadm("backup", "verify", str(b["id"]))
        self.assertEqual(r.returncode, 0, r.stderr)

    def _throttled(self):
        self.sb.restart_agents_with("[backup]\nthrottle = 3\n")
        self.addCleanup(self.sb.restart_agents_with, "")

    def _start_slow_backup(self):
        r = self.haadm("backup", "run", "--json")
        out = json.loads(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rec = self.sb.wait_for(lambda: (lambda b: b if b["state"] == "running" else None)(
            self.record(out["id"])), 10, what="the job running")
        n = int(rec["node"][-1])
        # its mariadb-backup, a child of that node's agent
        def child():
            r = subprocess.run(["pgrep", "-P", str(self.sb.agent_pid(n)), "-f", "mariadb-backup"],
                               capture_output=True, text=True)
            return int(r.stdout.split()[0]) if r.stdout.split() else None
        pid = self.sb.wait_for(child, 10, interval=0.05, what="mariadb-backup running")
        return rec, n, pid

    def test_3_killed_midway_leaves_nothing(self):
        self._throttled()
        p = self.primary()
        for what in ("mariadb-backup", "agent"):
            rec, n, pid = self._start_slow_backup()
            os.kill(pid if what == "mariadb-backup" else self.sb.agent_pid(n), signal.SIGKILL)
            end = self.sb.wait_for(lambda: (lambda b: b if b["state"] != "running" else None)(
                self.record(rec["id"])), 40, what=f"the job ended after killing {what}")
            self.assertEqual(end["state"], "failed" if what == "mariadb-backup" else "abandoned",
                             end)
            self.assertFalse(os.path.exists(os.path.join(self.repo(), "backups", rec["name"])))
            # nor its staging area, even when its agent is not there to clean it
            staged = os.path.join(self.repo(), ".partial", rec["node"], rec["name"])
            self.sb.wait_for(lambda: not os.path.exists(staged), 20,
                             what=f"{staged} removed")
            # nothing else was disturbed: the primary still takes writes, no failover
            self.sb.sql(p, "INSERT INTO sandbox.bk_b VALUES (100000 + UNIX_TIMESTAMP(), 'k') "
                           "ON DUPLICATE KEY UPDATE v = 'k'")
            self.assertEqual(self.sb.status()["primary"], f"node{p}")
            self.sb.up()
            self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")
            last = end
        # a job abandoned while its agent was committing can land after the abandon: the
        # coordinator's agent removes what such a late commit leaves
        orphan = os.path.join(self.repo(), "backups", last["name"])
        os.makedirs(os.path.join(orphan, "chunks"))
        with open(os.path.join(orphan, "manifest"), "w") as f:
            f.write("haagent-backup 3\n")
        self.sb.wait_for(lambda: not os.path.exists(orphan), 20,
                         what="the late commit of an abandoned job removed")
        # the next backup works, on whichever node
        b = self.run_backup()
        self.assertEqual(b["state"], "done")
        self.assertEqual(os.listdir(os.path.join(self.repo(), ".partial", b["node"])), [])

    def test_4_retention_deletes_exactly_what_is_not_kept(self):
        r = self.haadm("backup", "policy", "--keep-full", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            chains = []
            for _ in range(3):
                f = self.run_backup("--type", "full")
                i = self.run_backup("--type", "incremental")
                chains.append((f, i))
            keep = {x["id"] for c in chains[-2:] for x in c}

            def settled():
                cat = self.catalog()
                by_id = {b["id"]: b for b in cat}

                def root(b):
                    while b["parent"]:
                        b = by_id[b["parent"]]
                    return b["id"]
                # what earlier tests restored or drilled is held, with its chain, for 24 h
                now = time.time() * 1000
                held = {root(b) for b in cat if b["state"] == "done" and
                        (b["held_until_unix_ms"] or 0) > now}
                live = {b["id"] for b in cat if b["state"] == "done"}
                expect = keep | {i for i in live if root(by_id[i]) in held}
                return live if live == expect else None
            live = self.sb.wait_for(settled, 30, what="retention")
            self.assertEqual(live & {x["id"] for c in chains for x in c}, keep)
            for b in self.catalog():
                path = os.path.join(self.repo(), "backups", b["name"])
                if b["state"] == "deleted":
                    self.sb.wait_for(lambda: not os.path.exists(path), 10,
                                     what=f"{b['name']} removed from the repository")
                elif b["id"] in keep:
                    self.assertTrue(os.path.exists(path))
        finally:
            self.haadm("backup", "policy", "--keep-full", "0")

    def test_5_reclone_a_diverged_old_primary(self):
        """haadm node reclone: the old primary, diverged after a failover (a transaction the new
        primary lacks), is re-cloned from a backup in one command and replicates again."""
        sb = self.sb
        p = self.primary()
        old_backup = self.run_backup()
        # the primary writes after that backup, then dies with its agent: failover
        sb.sql(p, "INSERT INTO sandbox.bk_b SELECT seq + 200000, 'before' FROM "
                  "sandbox.seq_1_to_100")
        os.kill(sb.agent_pid(p), signal.SIGKILL)
        os.kill(sb.db_pid(p), signal.SIGKILL)
        new = sb.wait_for(lambda: (lambda s: s if s["primary"] not in ("", f"node{p}") and
                                   sb.node(s, s["primary"])["read_only"] is False else None)(
            sb.status(conf_node=next(n for n in (1, 2, 3) if n != p))), 30,
            what="a new primary")["primary"]
        q = int(new[-1])
        # the old primary comes back with a transaction nobody else has (its own sequence
        # number far ahead: crash recovery may have dropped its last, replicated transaction,
        # and a write reusing that GTID would differ in content only, which no GTID shows)
        sb.run_sandbox("start-db", str(p))
        sb.sql(p, "SET GLOBAL rpl_semi_sync_master_enabled=OFF; SET SESSION gtid_seq_no=1000000; "
                  "INSERT INTO sandbox.bk_b VALUES (999999, 'errant')")
        sb.up()
        sb.wait_for(lambda: sb.node(sb.status(conf_node=q), f"node{p}")["role"] == "diverged",
                    30, what=f"node{p} marked diverged")

        def reclone(*args, conf=p):
            r = self.haadm("node", "reclone", *args, "--json", conf=sb.conf(conf), timeout=600)
            try:
                return r.returncode, json.loads(r.stdout)
            except ValueError:
                raise AssertionError(f"no JSON (exit {r.returncode}): {r.stdout} {r.stderr}")
        # refusals, before anything changes
        code, out = reclone(f"node{p}", conf=q)
        self.assertEqual((code, out["result"]), (14, "refused"), out)
        self.assertIn(f"run this on node{p}'s host", out["message"])
        code, out = reclone(new, conf=q)
        self.assertEqual(code, 14, out)
        self.assertIn("is the primary", out["message"])
        # a backup from before the old primary's last transactions: it could never get them
        code, out = reclone(f"node{p}", "--backup", str(old_backup["id"]))
        self.assertEqual(code, 14, out)
        self.assertIn("predates", out["message"])
        self.assertFalse(sb.node(sb.status(), f"node{p}")["maintenance"])
        label = sb.node(sb.status(), f"node{p}")["datadir_instance"]
        self.assertRegex(label or "", r"^[0-9a-f]{32}$")
        # a backup taken now, on the remaining replica, then the re-clone
        b = self.run_backup()
        self.assertNotIn(b["node"], (f"node{p}", new))
        # written after the backup: the re-clone replays them from the binlog archive
        sb.sql(q, "INSERT INTO sandbox.bk_b SELECT seq + 300000, 'rolled' FROM "
                  "sandbox.seq_1_to_50")
        pos = sb.sql(q, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: (sb.status(conf_node=q).get("archive") or {}).get("head_gtid") == pos,
                    30, what="the archive holding the writes after the backup")
        code, out = reclone(f"node{p}")
        self.assertEqual((code, out["result"]), (0, "done"), out)
        self.assertEqual(out["backup"], b["id"])
        self.assertEqual(len(out["steps"]), 7, out["steps"])
        self.assertTrue(any(re.search(r"rolled forward with the binlog archive: [1-9]\d* "
                                      r"transactions", x) for x in out["steps"]), out["steps"])
        self.assertTrue(os.path.isdir(out["old_datadir"]))
        # replicating from the new primary, no longer diverged, without the errant row
        s = sb.wait_for(lambda: (lambda s: s if sb.node(s, f"node{p}")["role"] == "replica"
                                 else None)(sb.status()), 30, what=f"node{p} a replica")
        x = sb.node(s, f"node{p}")
        self.assertEqual(x["master"], f"{sb.ip(q)}:3306")
        self.assertFalse(x["maintenance"])
        gtid = self.converged(q)
        self.assertEqual(sb.sql(p, "SELECT @@gtid_current_pos"), gtid)
        self.assertEqual(sb.sql(p, "SELECT COUNT(*) FROM sandbox.bk_b WHERE id = 999999"), "0")
        self.assertEqual(sb.sql(p, "SELECT COUNT(*) FROM sandbox.bk_b WHERE v = 'before'"), "100")
        self.assertEqual(sb.sql(p, "SELECT COUNT(*) FROM sandbox.bk_b WHERE v = 'rolled'"), "50")
        self.assertEqual(self.checksums(lambda q_: sb.sql(p, q_)),
                         self.checksums(lambda q_: sb.sql(q, q_)))
        self.assertIn("node-converged", [e["name"] for e in sb.events()])
        # a new datadir: a new label, so no incremental chain continues across the re-clone
        relabelled = sb.wait_for(lambda: (lambda v: v if v and v != label else None)(
            sb.node(sb.status(), f"node{p}")["datadir_instance"]), 10,
            what=f"node{p}'s new datadir label")
        self.assertRegex(relabelled, r"^[0-9a-f]{32}$")
        shutil.rmtree(out["old_datadir"], ignore_errors=True)

    def test_6_pauses_while_its_replica_lags(self):
        """[backup] lag_pause_ms: the stream stops being read while the source replica lags, so
        mariadb-backup waits and the replica catches up; bounded by lag_pause_max_ms."""
        sb = self.sb
        sb.restart_agents_with("[backup]\nthrottle = 5\nlag_pause_ms = 1000\n"
                               "lag_pause_max_ms = 3000\n")
        self.addCleanup(sb.restart_agents_with, "")
        p = self.primary()
        t = next(n for n in (1, 2, 3) if n != p)
        sb.sql(t, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=4; START SLAVE")
        self.addCleanup(sb.sql, t, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
        stop = threading.Event()

        def writes():
            i = 0
            while not stop.is_set():
                i += 1
                sb.sql(p, f"REPLACE INTO sandbox.bk_b VALUES ({300000 + i % 50}, 'lag')")
                time.sleep(0.2)
        w = threading.Thread(target=writes, daemon=True)
        w.start()
        try:
            sb.wait_for(lambda: (sb.node(sb.status(), f"node{t}")["lag_seconds"] or 0) >= 2, 20,
                        what=f"node{t} lagging")
            b = self.run_backup("--node", f"node{t}")
        finally:
            stop.set()
            w.join(10)
        self.assertEqual(b["node"], f"node{t}")
        self.assertIn("paused", b["detail"])
        self.assertIn("while the replica lagged", b["detail"])

    def test_7_schedules_run_by_themselves(self):
        """The coordinator starts scheduled backups on a replica by itself: a slot that fell due
        moments ago is caught up at once, the same slot never runs twice, a type covered by a
        wider backup since its slot does not run, and the next slot runs."""
        sb = self.sb
        primary = sb.status()["primary"]

        def policy(**kw):
            args = []
            for k, v in kw.items():
                args += [f"--{k}", v]
            r = self.haadm("backup", "policy", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(policy, full="", differential="", incremental="")
        # a slot with no backup requested since it began: this minute, unless one was
        latest = max((b["requested_unix_ms"] for b in self.catalog()), default=0)
        if latest >= int(time.time() // 60 * 60000):
            time.sleep(61 - time.time() % 60)
        known = {b["id"] for b in self.catalog()}
        minute = time.gmtime().tm_min
        policy(full=f"{minute} * * * *")

        def new_one(kind):
            for b in self.catalog():
                if b["id"] not in known and b["type"] == kind:
                    return b
            return None
        full = sb.wait_for(lambda: new_one("full"), 30, what="the scheduled full backup")
        self.assertIn(f"scheduled ({minute} * * * *)", full["detail"])
        self.assertNotEqual(full["node"], primary)
        full = sb.wait_for(lambda: (lambda b: b if b["state"] != "running" else None)(
            self.record(full["id"])), 120, what="the scheduled full backup finished")
        self.assertEqual(full["state"], "done", full)
        known.add(full["id"])
        # the same slot does not run again, and covers an incremental backup of that slot
        policy(incremental=f"{minute} * * * *")
        time.sleep(3)
        self.assertEqual({b["id"] for b in self.catalog()} - known, set())
        # every minute: the next slot runs an incremental backup on a replica
        policy(full="", incremental="* * * * *")
        inc = sb.wait_for(lambda: new_one("incremental"), 75,
                          what="a scheduled incremental backup")
        self.assertIn("scheduled (* * * * *)", inc["detail"])
        self.assertNotEqual(inc["node"], primary)
        self.assertEqual(inc["parent"], full["id"])
        ev = [e for e in sb.events() if e["name"] == "backup-begin"]
        self.assertTrue(any(e["detail"] == inc["name"] for e in ev))

    def test_8_chains_stay_on_one_server(self):
        """An incremental or differential backup is taken on the server that took its chain's
        full backup; when that server became the primary, the next one starts a new full chain
        on a replica and says why; every backup restores (drill: checksums match)."""
        sb = self.sb
        original = sb.status()["primary"]
        full = self.run_backup("--type", "full")
        src = full["node"]
        self.assertRegex(full["datadir_instance"], r"^[0-9a-f]{32}$")
        self.assertEqual(full["datadir_instance"],
                         sb.node(sb.status(), src)["datadir_instance"])
        other = next(x["name"] for x in sb.status()["nodes"]
                     if x["name"] not in (src, original))
        # on another replica: refused, saying where it runs
        r = self.haadm("backup", "run", "--type", "incremental", "--node", other)
        self.assertEqual(r.returncode, 14, r.stdout + r.stderr)
        self.assertIn(f"continues the chain of backup {full['id']}, taken on {src}", r.stderr)
        # the full backup's server becomes the primary (a switchover)
        r = sb.haadm("failover", "--to", src, "--json", timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.addCleanup(lambda: sb.haadm("failover", "--to", original, timeout=90))
        sb.wait_for(lambda: (lambda s: s if s["primary"] == src and sb.whole() else None)(
            sb.status()), 60, what=f"{src} the primary, the cluster whole")
        p = int(src[-1])
        sb.sql(p, "USE sandbox; INSERT INTO sandbox.bk_b SELECT seq + 400000, 'after' "
                  "FROM seq_1_to_700; UPDATE sandbox.bk_a SET k = k + 3 WHERE id % 5 = 0")
        inc = self.run_backup("--type", "incremental")
        self.assertEqual((inc["type"], inc["parent"]), ("full", None), inc)
        self.assertNotEqual(inc["node"], src)
        self.assertIn("a new full chain instead of an incremental backup: the chain of backup "
                      f"{full['id']} was taken on {src} and it is the primary", inc["detail"])
        sb.sql(p, "USE sandbox; INSERT INTO sandbox.bk_b SELECT seq + 401000, 'later' FROM seq_1_to_300")
        gtid = self.converged(p)
        want = self.checksums(lambda q: sb.sql(p, q))
        diff = self.run_backup("--type", "differential")
        self.assertEqual((diff["type"], diff["parent"], diff["node"]),
                         ("differential", inc["id"], inc["node"]), diff)
        self.assertEqual(diff["gtid"], gtid)
        # every backup of this test restores, the newest to the primary's tables
        for b in (full, inc, diff):
            r = self.haadm("backup", "verify", str(b["id"]), "--drill", "--json", timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d = tempfile.mkdtemp(prefix="haagent-restore-", dir=sb.dir)
        target = os.path.join(d, "datadir")
        r = self.haadm("restore", str(diff["id"]), "--target-dir", target, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.checksums(self.start_mariadbd(target)), want)

    def test_9_a_backup_being_read_is_kept(self):
        """A restore holds the backup it reads, with its chain, against retention."""
        a = self.run_backup("--type", "full")
        ai = self.run_backup("--type", "incremental")
        self.assertEqual(ai["parent"], a["id"])
        target = os.path.join(tempfile.mkdtemp(prefix="haagent-restore-", dir=self.sb.dir), "d")
        t0 = time.time()
        r = self.haadm("restore", str(ai["id"]), "--target-dir", target, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        shutil.rmtree(os.path.dirname(target))
        held = self.record(ai["id"])["held_until_unix_ms"]
        self.assertGreater(held, (t0 + 23 * 3600) * 1000)
        b = self.run_backup("--type", "full")
        c = self.run_backup("--type", "full")
        r = self.haadm("backup", "policy", "--keep-full", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            self.sb.wait_for(lambda: self.record(b["id"])["state"] == "deleted", 60,
                             what="retention deleting the chain nobody reads")
            states = {x["id"]: x["state"] for x in self.catalog()}
            self.assertEqual((states[a["id"]], states[ai["id"]], states[c["id"]]),
                             ("done", "done", "done"))
        finally:
            self.haadm("backup", "policy", "--keep-full", "0")


if __name__ == "__main__":
    unittest.main()
