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

from harness import HAADM, SRC, Sandbox, query_datadir

FIRST = 61


class ReposTest(unittest.TestCase):
    second = "offsite"  # the repository written after "local"

    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")
        cls.local = os.path.join(cls.sb.dir, "backups")
        cls.offsite = os.path.join(cls.sb.dir, "offsite")
        cls.second_conf = f"[repository offsite]\ntype = dir\npath = {cls.offsite}\n"
        cls.extra = "[backup]\ncopy_interval_ms = 1000\narchive_seal_ms = 1000\n"
        cls.sb.restart_agents_with(cls.second_conf + cls.extra)
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
            self.assertIn("written to offsite, passed over: local", b["detail"])
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
        # one repository alone: the damaged one fails, the other passes
        r = self.haadm("backup", "verify", str(b["id"]), "--repository", "local")
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertIn("chunk 0: SHA-256 mismatch", r.stderr)
        r = self.haadm("backup", "verify", str(b["id"]), "--repository", "offsite")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.haadm("backup", "verify", str(b["id"]), "--repository", "nowhere")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("it has: local, offsite", r.stderr)
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

    def has_slice(self, name):
        return os.path.exists(os.path.join(self.offsite, "archive", name))

    def in_second(self, name):
        return os.path.exists(os.path.join(self.offsite, "backups", name))

    def test_5_a_repository_keeps_less_by_its_own_retention(self):
        """The second repository with keep_full = 1: after a new full backup, an older full
        backup and its incremental are removed from it and from their list in the catalog,
        and stay whole in the first repository; the new one is in both. (Backups a restore or
        a verify still holds are kept everywhere, as by the cluster's retention.)"""
        first = self.backup()
        self.write()
        inc = self.wait_copies(self.backup("--type", "incremental")["id"], ["local", self.second])
        self.wait_copies(first["id"], ["local", self.second])
        self.sb.restart_agents_with(self.second_conf + "keep_full = 1\n" + self.extra)
        self.addCleanup(self.sb.restart_agents_with, self.second_conf + self.extra)
        newest = self.backup()

        def settled():
            got = [self.record(x["id"]) for x in (first, inc, newest)]
            old_gone = all(x["repositories"] == ["local"] and not self.in_second(x["name"])
                           for x in got[:2])
            return got if old_gone and got[2]["repositories"] == ["local", self.second] \
                and self.in_second(got[2]["name"]) else None
        self.sb.wait_for(settled, 90, what="the second repository trimmed to the new full")
        for x in (first, inc, newest):
            self.assertTrue(os.path.exists(os.path.join(self.local, "backups", x["name"])))
        # the older chain still restores, from the first repository
        r = self.haadm("backup", "verify", str(inc["id"]))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_3_the_archive_reaches_every_repository(self):
        """Archive slices are copied too: the second repository holds the newest slice, and a
        restore to a point in time from it alone (the first left out of the configuration)
        gets every row written before that point."""
        base = self.wait_copies(self.backup()["id"], ["local", self.second])
        self.assertTrue(base)
        self.pitr_from_second()

    def pitr_from_second(self):
        self.write(300)
        p = self.primary()
        want = self.sb.sql(p, "SELECT COUNT(*), MAX(id) FROM sandbox.rp")
        pos = self.sb.sql(p, "SELECT @@gtid_binlog_pos")

        def archived():
            a = self.sb.status().get("archive") or {}
            if a.get("head_gtid") != pos:
                return None
            head = a.get("head")
            return head if self.has_slice(head) else None
        self.sb.wait_for(archived, 60, what="the archive's head in the second repository")
        conf = self.conf_without("local")
        target = os.path.join(self.tmp, f"pitr-{self.second}")
        r = self.haadm("restore", "--to-gtid", pos, "--target-dir", target, "--json",
                       conf=conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], "restored")
        got = self.query(target, "SELECT COUNT(*), MAX(id) FROM sandbox.rp")
        self.assertEqual(got, want)

    def query(self, datadir, sql):
        return query_datadir(self.tmp, datadir, sql)


RGW_IP, RGW_PORT = "127.0.0.233", 7483
RGW = f"http://{RGW_IP}:{RGW_PORT}"
S3TOOL = os.environ.get("S3TOOL", os.path.join(SRC, "build", "tests", "s3tool"))
BUCKET = "haagent-repos"
PREFIX = "sandbox1"


def nft(*args, check=True):
    r = subprocess.run(["nft", *args], capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise AssertionError(f"nft {' '.join(args)}: {r.stderr}")


class S3ReposTest(ReposTest):
    """The same cluster with an S3 repository (real radosgw, deploy/radosgw.sh) beside the
    directory: backups, incrementals and archive slices reach the bucket; the bucket alone
    restores, to a backup and to a point in time; radosgw cut off in the middle of a copy
    delays only its copy, which completes once healed, and nothing half-written is listed; a
    chunk damaged in the bucket comes from the directory; wrong credentials and a missing bucket
    are said by haadm config check."""

    second = "s3"

    @classmethod
    def setUpClass(cls):
        cls.sbdir = tempfile.mkdtemp(prefix="haagent-repos-s3-")
        cls.addClassCleanup(shutil.rmtree, cls.sbdir, True)
        cls.rgw = ["bash", os.path.join(SRC, "deploy", "radosgw.sh"), "--dir",
                   os.path.join(cls.sbdir, "rgw"), "--ip", RGW_IP, "--port", str(RGW_PORT)]
        cls.addClassCleanup(subprocess.run, cls.rgw + ["destroy"], capture_output=True,
                            timeout=120)
        r = subprocess.run(cls.rgw + ["start"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"radosgw.sh start: {r.stdout}{r.stderr}")
        cls.keys = os.path.join(cls.sbdir, "rgw", "s3.keys")
        cls.s3(["mkbucket"])
        cls.sb = Sandbox(first=171)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")
        cls.local = os.path.join(cls.sb.dir, "backups")
        cls.s3conf = (f"[repository s3]\ntype = s3\nendpoint = {RGW}\nbucket = {BUCKET}\n"
                      f"prefix = {PREFIX}\ncredentials_file = {cls.keys}\n"
                      "timeout_ms = 3000\nconnect_timeout_ms = 1000\nretries = 2\n")
        cls.second_conf = cls.s3conf
        cls.extra = "[backup]\ncopy_interval_ms = 1000\narchive_seal_ms = 1000\nchunk_kb = 256\n"
        cls.sb.restart_agents_with(cls.second_conf + cls.extra)
        p = cls.primary()
        cls.sb.sql(p, "USE sandbox; CREATE TABLE sandbox.rp (id INT PRIMARY KEY, v CHAR(200)); "
                      "INSERT INTO sandbox.rp SELECT seq, REPEAT(MD5(seq), 6) "
                      "FROM seq_1_to_40000")
        cls.tmp = tempfile.mkdtemp(prefix="haagent-repos-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    @classmethod
    def s3(cls, args, keys=None, bucket=BUCKET):
        r = subprocess.run([S3TOOL, "--json", "--endpoint", RGW, "--bucket", bucket,
                            "--credentials-file", keys or cls.keys] + args,
                           capture_output=True, text=True, timeout=120)
        out = json.loads(r.stdout)
        if not out.get("ok"):
            raise AssertionError(f"s3tool {args}: {out} {r.stderr}")
        return out

    def keys_under(self, under):
        return [o["key"] for o in self.s3(["list", f"{PREFIX}/{under}"])["objects"]]

    def committed(self):
        """The backup names whose manifest is in the bucket."""
        return sorted(k.rsplit("/", 1)[1][:-len(".manifest")]
                      for k in self.keys_under("backups/") if k.endswith(".manifest"))

    def manifest(self, root, name):
        if root != "s3":
            return super().manifest(root, name)
        path = os.path.join(self.tmp, "m")
        self.s3(["--out", path, "get", f"{PREFIX}/backups/{name}.manifest"])
        with open(path, "rb") as f:
            return f.read()

    # ---- tests ----
    def test_0_a_backup_reaches_every_repository(self):
        """A full and an incremental: each in the directory first, then the bucket, the
        manifests byte for byte; the newest archive slice in the bucket too."""
        for kind in ("full", "incremental"):
            self.write()
            b = self.backup("--type", kind)
            b = self.wait_copies(b["id"], ["local", "s3"])
            self.assertEqual(self.manifest(self.local, b["name"]),
                             self.manifest("s3", b["name"]))
            data = self.keys_under(f"backups-data/{b['name']}/chunks/")
            self.assertEqual(len(data), b["chunks"])
        self.assertEqual(self.keys_under("backups-partial/"), [])
        head = self.sb.wait_for(lambda: (self.sb.status().get("archive") or {}).get("head"),
                                30, what="an archive head")
        self.sb.wait_for(lambda: self.has_slice(head), 60, what="the head slice in the bucket")
        r = self.haadm("config", "check")
        self.assertIn("repository s3", r.stdout)
        self.assertIn("listed, written, read, deleted", r.stdout)

    def test_1_a_repository_down_catches_up(self):
        """radosgw cut off (an nft rule on its port) while the copier uploads a backup: the
        copy fails within its timeouts, a backup taken meanwhile completes in the directory,
        and once healed the bucket gets both, with nothing half-written listed."""
        base = self.wait_copies(self.backup()["id"], ["local", "s3"])
        self.assertTrue(base)
        table = "haagent_test_repos"
        nft("add", "table", "inet", table)
        self.addCleanup(nft, "delete", "table", "inet", table, check=False)
        nft("add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }")
        self.write(2000)
        r = self.haadm("backup", "run", "--json")
        bid = json.loads(r.stdout)["id"]
        # cut as soon as the copy to the bucket has begun (its staging marker is there)
        staged = self.sb.wait_for(lambda: self.keys_under("backups-partial/") or None, 120,
                                  interval=0.05, what="the copy to the bucket under way")
        nft("add", "rule", "inet", table, "out", "ip", "daddr", RGW_IP, "tcp", "dport",
            str(RGW_PORT), "drop")
        self.assertTrue(staged)
        b = self.sb.wait_for(lambda: (lambda x: x if x["state"] == "done" else None)(
            self.record(bid)), 120, what="the backup done")
        self.assertEqual(b["repositories"], ["local"])
        t0 = time.monotonic()
        self.write()
        b2 = self.backup("--type", "incremental")
        print(f"incremental while the bucket is cut off: {time.monotonic() - t0:.1f} s")
        self.assertEqual(b2["repositories"], ["local"])
        time.sleep(3)
        self.assertEqual(self.record(bid)["repositories"], ["local"])
        nft("delete", "table", "inet", table)
        for x in (b, b2):
            self.wait_copies(x["id"], ["local", "s3"], timeout=120)
        catalog = {x["name"] for x in json.loads(
            self.haadm("backup", "list", "--json").stdout)["backups"] if x["state"] == "done"}
        self.assertTrue(set(self.committed()) <= catalog, (self.committed(), catalog))
        self.assertIn(b["name"], self.committed())

    def test_2_a_damaged_chunk_is_taken_from_the_other_repository(self):
        """With the bucket read first (a configuration listing it first), a chunk altered in
        the bucket comes from the directory."""
        b = self.wait_copies(self.backup()["id"], ["local", "s3"])
        key = f"{PREFIX}/backups-data/{b['name']}/chunks/00000000"
        path = os.path.join(self.tmp, "chunk")
        self.s3(["--out", path, "get", key])
        with open(path, "r+b") as f:
            f.seek(50)
            byte = f.read(1)
            f.seek(50)
            f.write(bytes([byte[0] ^ 0xFF]))
        self.s3(["put", key, path])
        conf = self.conf_s3_first()
        r = self.haadm("backup", "verify", str(b["id"]), conf=conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("backup-chunk-fallback", r.stderr)
        self.assertIn("repository s3", r.stderr)

    def conf_s3_first(self):
        """node1's configuration with the bucket's section moved before the directory's."""
        path = self.conf_without("s3")
        with open(path) as f:
            text = f.read()
        text = text.replace("[repository local]", self.s3conf + "\n[repository local]", 1)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_3_the_archive_reaches_every_repository(self):
        """The bucket alone (the directory left out of the configuration) restores a backup
        and a point in time, with the agents answering and without (the catalog then read
        from the bucket)."""
        b = self.wait_copies(self.backup()["id"], ["local", "s3"])
        conf = self.conf_without("local")
        target = os.path.join(self.tmp, "from-s3")
        r = self.haadm("restore", str(b["id"]), "--target-dir", target, "--json", conf=conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.pitr_from_second()
        # and with no agent answering either (the cluster lost): the catalog from the bucket
        with open(conf) as f:
            text = f.read()
        lost = os.path.join(self.tmp, "lost.conf")
        with open(lost, "w") as f:
            f.write(text.replace("rpc_port = 7200", "rpc_port = 7290"))
        r = self.haadm("backup", "list", "--json", conf=lost)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("read from the repository", r.stderr)
        self.assertIn(b["name"], [x["name"] for x in json.loads(r.stdout)["backups"]])
        r = self.haadm("restore", str(b["id"]), "--target-dir", target + "-lost", "--json",
                       conf=lost)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def has_slice(self, name):
        return f"{PREFIX}/archive/{name}.manifest" in self.keys_under("archive/")

    def in_second(self, name):
        return name in self.committed()

    def test_4_wrong_credentials_and_a_missing_bucket_are_said(self):
        """haadm config check names what is wrong: the credentials, the bucket."""
        bad = os.path.join(self.tmp, "bad.keys")
        with open(self.keys) as f:
            text = f.read()
        secret = text.split("secret_key = ")[1].split()[0]
        with open(bad, "w") as f:
            f.write(text.replace(secret, "x" * len(secret)))
        os.chmod(bad, 0o600)
        for name, repl, want in (("creds", (self.keys, bad), "credentials"),
                                 ("bucket", (f"bucket = {BUCKET}", "bucket = no-such-bucket"),
                                  "bucket")):
            conf = os.path.join(self.tmp, f"{name}.conf")
            with open(self.conf_s3_first()) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace(*repl))
            r = self.haadm("config", "check", conf=conf)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            line = [x for x in r.stdout.splitlines() if "repository s3" in x]
            self.assertTrue(line and want in line[0].lower(), r.stdout)


    def test_6_a_bucket_cut_off_never_keeps_the_leader_from_a_job(self):
        """radosgw cut off while the leader's agent sweeps (it removes the deleted backups from
        every repository, each removal from the bucket waiting out its timeout, here 40 s): a
        backup placed on the leader's node is still taken at once (the coordinator abandons a
        job its node does not take within 30 s) and completes in the directory, without
        waiting for the bucket."""
        r = self.haadm("backup", "policy", "--keep-full", "1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.addCleanup(self.haadm, "backup", "policy", "--keep-full", "0")
        self.backup()
        self.backup()
        self.sb.wait_for(lambda: any(x["state"] == "deleted" for x in json.loads(
            self.haadm("backup", "list", "--json").stdout)["backups"]), 30,
            what="a backup deleted by retention")
        slow = (self.s3conf.replace("timeout_ms = 3000", "timeout_ms = 40000")
                .replace("connect_timeout_ms = 1000", "connect_timeout_ms = 40000")
                .replace("retries = 2", "retries = 0"))
        self.addCleanup(self.sb.restart_agents_with, self.second_conf + self.extra)
        table = "haagent_test_repos_sweep"
        self.addCleanup(nft, "delete", "table", "inet", table, check=False)

        def cut():
            nft("add", "table", "inet", table)
            nft("add", "chain", "inet", table, "out",
                "{ type filter hook output priority 0 ; }")
            nft("add", "rule", "inet", table, "out", "ip", "daddr", RGW_IP, "tcp", "dport",
                str(RGW_PORT), "drop")
        # every agent anew (stopped before the bucket is cut off: an agent stopping waits for
        # its sweep), the leader's sweeps every deleted backup again, from the bucket too
        self.sb.restart_agents_with(slow + self.extra + "allow_primary = yes\n",
                                    before_start=cut)
        leader = self.sb.leader_of(self.sb.status())
        t0 = time.monotonic()
        r = self.haadm("backup", "run", "--node", leader, "--wait", "--json", timeout=400)
        out = json.loads(r.stdout)
        took = time.monotonic() - t0
        print(f"a backup on the leader's node with the bucket cut off: {took:.1f} s")
        self.assertEqual(out["result"], "done", r.stdout + r.stderr)
        # the job never waited for the bucket (one request there takes 40 s to fail): its
        # clean of the node's leftovers touches only the repository that takes the backup
        self.assertLess(took, 38, "the job waited for the repository that is cut off")
        self.assertEqual(self.record(out["id"])["repositories"], ["local"])

    def test_7_a_rotated_key_is_taken_without_a_restart(self):
        """The bucket's credentials file holds a wrong secret: the backup completes in the
        directory and its copy to the bucket fails (SignatureDoesNotMatch). The right secret
        written into the file (replaced, as a rotation does) is used by the running agents:
        the copy completes, no agent restarted."""
        rot = os.path.join(self.tmp, "rotated.keys")
        with open(self.keys) as f:
            good = f.read()
        secret = good.split("secret_key = ")[1].split()[0]

        def put(text):
            tmp = rot + ".new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.rename(tmp, rot)
        put(good.replace(secret, "x" * len(secret)))
        self.addCleanup(self.sb.restart_agents_with, self.second_conf + self.extra)
        self.sb.restart_agents_with(
            self.s3conf.replace(f"credentials_file = {self.keys}", f"credentials_file = {rot}")
            + self.extra)
        pids = [self.sb.agent_pid(n) for n in (1, 2, 3)]
        b = self.backup()
        self.assertEqual(b["repositories"], ["local"])
        self.sb.wait_for(lambda: any("SignatureDoesNotMatch" in line for line in
                                     self.sb.logs().splitlines()), 30,
                         what="the copy to the bucket refused")
        self.assertEqual(self.record(b["id"])["repositories"], ["local"])
        put(good)
        self.wait_copies(b["id"], ["local", "s3"], timeout=60)
        self.assertEqual([self.sb.agent_pid(n) for n in (1, 2, 3)], pids)


if __name__ == "__main__":
    unittest.main()
