"""Several repositories with real mariadbd, mariadb-backup and agents: every backup and every
archive slice reaches every repository (the first that takes it, then the leader's copier);
one repository down delays only its own copy, which catches up once it is back; a damaged
chunk in one repository is taken from another by verify and restore; and a repository alone
restores to a point in time."""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import HAADM, Sandbox

FIRST = 61


class ReposTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")
        cls.local = os.path.join(cls.sb.dir, "backups")
        cls.offsite = os.path.join(cls.sb.dir, "offsite")
        cls.sb.restart_agents_with(f"[repository offsite]\ntype = dir\npath = {cls.offsite}\n"
                                   "[backup]\ncopy_interval_ms = 1000\narchive_seal_ms = 1000\n")
        p = cls.primary()
        cls.sb.sql(p, "USE sandbox; CREATE TABLE sandbox.rp (id INT PRIMARY KEY, v CHAR(200)); "
                      "INSERT INTO sandbox.rp SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000")
        cls.tmp = tempfile.mkdtemp(prefix="haagent-repos-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    @classmethod
    def primary(cls):
        return int(cls.sb.status()["primary"][-1])

    def setUp(self):
        self.sb.up()
        self.sb.wait_for(self.sb.whole, 30, what="a whole cluster")

    # ---- helpers ----
    def haadm(self, *args, conf=None, timeout=300):
        return subprocess.run([HAADM, "-c", conf or self.sb.conf(1)] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def record(self, bid):
        r = self.haadm("backup", "show", str(bid), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def backup(self, *args):
        r = self.haadm("backup", "run", "--wait", "--json", *args)
        out = json.loads(r.stdout)
        self.assertEqual((r.returncode, out["result"]), (0, "done"), r.stdout + r.stderr)
        return self.record(out["id"])

    def wait_copies(self, bid, want, timeout=60):
        return self.sb.wait_for(
            lambda: (lambda b: b if b["repositories"] == want else None)(self.record(bid)),
            timeout, what=f"backup {bid} complete in {want}")

    def manifest(self, root, name):
        with open(os.path.join(root, "backups", name, "manifest"), "rb") as f:
            return f.read()

    def write(self, n=200):
        p = self.primary()
        self.sb.sql(p, f"USE sandbox; INSERT INTO sandbox.rp SELECT seq + (SELECT MAX(id) FROM sandbox.rp), "
                       f"'w' FROM seq_1_to_{n}")

    def conf_without(self, repo):
        """node1's configuration without the [repository repo] section."""
        with open(self.sb.conf(1)) as f:
            lines = f.read().split("\n")
        out, skip = [], False
        for line in lines:
            if line.startswith("["):
                skip = line.strip() == f"[repository {repo}]"
            if not skip:
                out.append(line)
        path = os.path.join(self.tmp, f"without-{repo}.conf")
        with open(path, "w") as f:
            f.write("\n".join(out))
        return path

    # ---- tests ----
    def test_0_a_backup_reaches_every_repository(self):
        """Written to the first repository, copied to the second by the leader, byte for byte;
        the catalog lists both, in that order."""
        b = self.backup()
        self.assertEqual(b["repositories"][0], "local")
        b = self.wait_copies(b["id"], ["local", "offsite"])
        self.assertEqual(self.manifest(self.local, b["name"]),
                         self.manifest(self.offsite, b["name"]))
        chunks = sorted(os.listdir(os.path.join(self.offsite, "backups", b["name"], "chunks")))
        self.assertEqual(len(chunks), b["chunks"])
        # nothing staged is left behind in either
        for root in (self.local, self.offsite):
            self.assertEqual(glob.glob(os.path.join(root, ".partial", "*", "*")), [])

    def test_1_a_repository_down_catches_up(self):
        """The first repository unusable (its directory replaced by a file, as when a mount is
        gone): the backup goes to the second at once; once the first is back, the copier
        brings it there."""
        self.backup()  # a full one to build on
        away = self.local + ".away"
        os.rename(self.local, away)
        with open(self.local, "w") as f:
            f.write("not a directory\n")
        try:
            self.write()
            t0 = time.monotonic()
            b = self.backup("--type", "incremental")
            took = time.monotonic() - t0
            self.assertEqual(b["repositories"], ["offsite"])
            self.assertTrue(os.path.exists(os.path.join(self.offsite, "backups", b["name"])))
            print(f"incremental with the first repository down: {took:.1f} s")
            # still down: the copier fails and says so, the catalog does not change
            time.sleep(2.5)
            self.assertEqual(self.record(b["id"])["repositories"], ["offsite"])
        finally:
            os.unlink(self.local)
            os.rename(away, self.local)
        b = self.wait_copies(b["id"], ["offsite", "local"])
        self.assertEqual(self.manifest(self.local, b["name"]),
                         self.manifest(self.offsite, b["name"]))
        r = self.haadm("backup", "verify", str(b["id"]), "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_2_a_damaged_chunk_is_taken_from_the_other_repository(self):
        """A chunk altered in the first repository: verify and restore take it from the
        second and say so; altered in both, verify fails naming both."""
        b = self.wait_copies(self.backup()["id"], ["local", "offsite"])
        chunk = os.path.join(self.local, "backups", b["name"], "chunks", "00000000")
        with open(chunk, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
        r = self.haadm("backup", "verify", str(b["id"]), "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("backup-chunk-fallback", r.stderr)
        self.assertIn("repository local", r.stderr)
        target = os.path.join(self.tmp, "restored")
        r = self.haadm("restore", str(b["id"]), "--target-dir", target, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        other = os.path.join(self.offsite, "backups", b["name"], "chunks", "00000000")
        with open(other, "r+b") as f:
            f.seek(200)
            byte = f.read(1)
            f.seek(200)
            f.write(bytes([byte[0] ^ 0xFF]))
        r = self.haadm("backup", "verify", str(b["id"]))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("repository local", r.stderr)
        self.assertIn("repository offsite", r.stderr)

    def test_3_the_archive_reaches_every_repository(self):
        """Archive slices are copied too: the second repository holds the newest slice, and a
        restore to a point in time from it alone (the first left out of the configuration)
        gets every row written before that point."""
        base = self.wait_copies(self.backup()["id"], ["local", "offsite"])
        self.assertTrue(base)
        self.write(300)
        p = self.primary()
        want = self.sb.sql(p, "SELECT COUNT(*), MAX(id) FROM sandbox.rp")
        pos = self.sb.sql(p, "SELECT @@gtid_binlog_pos")

        def archived():
            a = self.sb.status().get("archive") or {}
            if a.get("head_gtid") != pos:
                return None
            head = a.get("head")
            return head if os.path.exists(os.path.join(self.offsite, "archive", head)) else None
        self.sb.wait_for(archived, 60, what="the archive's head in the second repository")
        conf = self.conf_without("local")
        target = os.path.join(self.tmp, "pitr")
        r = self.haadm("restore", "--to-gtid", pos, "--target-dir", target, "--json",
                       conf=conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], "restored")
        got = self.query(target, "SELECT COUNT(*), MAX(id) FROM sandbox.rp")
        self.assertEqual(got, want)

    def query(self, datadir, sql):
        """sql on a throwaway mariadbd over datadir."""
        sock = os.path.join(self.tmp, "q.sock")
        p = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={datadir}",
                              f"--socket={sock}", f"--pid-file={self.tmp}/q.pid",
                              "--skip-networking", "--user=root",
                              f"--log-error={self.tmp}/q.err", "--innodb-buffer-pool-size=64M"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def run():
                r = subprocess.run(["mariadb", "--no-defaults", "-uroot", f"--socket={sock}",
                                    "-N", "-B", "-e", sql], capture_output=True, text=True,
                                   timeout=30)
                return r.stdout.strip() if r.returncode == 0 else None
            return self.sb.wait_for(run, 60, what="the restored server")
        finally:
            p.terminate()
            p.wait(60)


if __name__ == "__main__":
    unittest.main()
