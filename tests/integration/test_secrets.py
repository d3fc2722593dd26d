"""Secrets (docs/security.md): passwords that need quoting everywhere they go, and secret files.

A sandbox whose agent and replication passwords hold a quote, a double quote, a backslash, '#',
spaces (one at an end), a tab and non-ASCII characters goes through bootstrap, a crash failover
(with salvage from the dead primary's binlog), a switchover, a backup and a re-clone: each step
puts a password somewhere else (CHANGE MASTER, the option files of mariadb, mariadb-binlog and
mariadb-backup). All the while a sampler reads the argv of every process on the machine, and the
environment of every process of this sandbox, every 50 ms: no password may show there, nor in the
agents' logs, their data directories, `haadm events --json` or `haadm status --json`.

Secret files: `haagentd --check` refuses a password or key file others can read (0644), one its
group can write (0660) and one owned by another user, naming the file and what to run; a node
named '..' is refused the same way.

Real mariadbd and haagentd processes on 127.0.0.201-203."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import HAAGENTD, HAADM, Sandbox

FIRST = 201
DB_PW = " pä ss'w\"o\\rd#1 x\\n\t"  # leading space, a literal backslash-n, a trailing tab
REPL_PW = "rêpl 'q' \"dq\" \\\\ #c "  # a doubled backslash, a trailing space


def variants(pw):
    """The password as it could leak: raw, trimmed, escaped for SQL or an option file."""
    out = {pw, pw.strip()}
    out.add(pw.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"'))
    out.add(pw.replace("\\", "\\\\").replace("'", "''"))
    out.add(pw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\t", "\\t"))
    return [v.encode() for v in out if len(v.strip()) >= 6]


# and pieces of each, as an error message quoting a statement "near '...'" would show them
NEEDLES = variants(DB_PW) + variants(REPL_PW) + ["pä ss".encode(), b"'q' \"dq\""]


class ProcSampler(threading.Thread):
    """Reads every process's argv, and the environment of those whose argv names the sandbox,
    until stopped; records any that holds a password, and the tools of the sandbox it saw."""

    def __init__(self, marker, interval=0.05):
        super().__init__(daemon=True)
        self.marker = marker.encode()
        self.interval = interval
        self.stopping = threading.Event()
        self.leaks = []
        self.seen = {}  # tool name -> how many samples showed it
        self.passes = 0

    def run(self):
        while not self.stopping.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                    env = b""
                    if self.marker in cmd:
                        with open(f"/proc/{pid}/environ", "rb") as f:
                            env = f.read()
                except OSError:
                    continue
                if b"sandbox.sh" in cmd:
                    # this test hands the passwords to the sandbox script in its environment;
                    # the script drops them before it starts anything (its children are
                    # checked whole), and the variables alone are left out of its own
                    env = b"\0".join(v for v in env.split(b"\0")
                                     if not v.startswith(b"HA_SANDBOX_"))
                for nd in NEEDLES:
                    if nd in cmd or nd in env:
                        self.leaks.append((pid, cmd.replace(b"\0", b" ")[:300]))
                if self.marker in cmd and cmd:
                    tool = os.path.basename(cmd.split(b"\0")[0]).decode(errors="replace")
                    if tool == "mariadb-backup" and b"\0--backup\0" in cmd:
                        tool += " --backup"  # the agent's backup, not a restore's --prepare
                    elif tool == "mariadb" and b"salvage.cnf" in cmd:
                        tool += " (salvage)"
                    self.seen[tool] = self.seen.get(tool, 0) + 1
            self.passes += 1
            time.sleep(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(10)


class SecretsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST, env={"HA_SANDBOX_DB_PASSWORD": DB_PW,
                                           "HA_SANDBOX_REPL_PASSWORD": REPL_PW})
        cls.addClassCleanup(cls.sb.destroy)
        cls.sampler = ProcSampler(cls.sb.dir)
        cls.sampler.start()
        cls.addClassCleanup(cls.sampler.stop)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")

    def setUp(self):
        self.sb.up()
        self.sb.wait_leader()
        self.sb.wait_for(self.sb.whole, 60, what="a whole cluster")

    # ---- helpers ----
    def primary(self):
        return int(self.sb.status()["primary"][-1])

    def converged(self, timeout=60):
        """Every node at the same position, every replica streaming from the primary without
        error: the replication password worked in every CHANGE MASTER."""
        sb = self.sb

        def pred():
            s = sb.whole()
            if not s:
                return None
            p = int(s["primary"][-1])
            want = sb.sql(p, "SELECT @@gtid_binlog_pos")
            for x in s["nodes"]:
                if x["name"] == s["primary"]:
                    continue
                if (x["master"] != f"{sb.ip(p)}:3306" or not x["io_running"] or
                        x.get("last_error") or x["gtid"] != want):
                    return None
            return s
        return sb.wait_for(pred, timeout, what="every replica streaming from the primary")

    def haadm_json(self, *args, conf=1, timeout=300):
        r = self.sb.haadm(*args, "--json", conf_node=conf, timeout=timeout)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"haadm {' '.join(args)}: no JSON (exit {r.returncode}): "
                                 f"{r.stdout} {r.stderr}\n{self.sb.logs()}") from None

    def write(self, n, rows):
        self.sb.sql(n, "CREATE TABLE IF NOT EXISTS sandbox.secrets (id INT PRIMARY KEY, v "
                       "CHAR(200)); INSERT INTO sandbox.secrets SELECT seq + (SELECT "
                       f"COALESCE(MAX(id), 0) FROM sandbox.secrets), REPEAT('x', 200) FROM "
                       f"sandbox.seq_1_to_{rows}")

    # ---- tests, in order: each step puts the passwords somewhere new ----
    def test_0_bootstrap(self):
        sb = self.sb
        for name, pw in (("haagent.password", DB_PW), ("repl.password", REPL_PW)):
            with open(os.path.join(sb.dir, name), encoding="utf-8", newline="") as f:
                self.assertEqual(f.read(), pw + "\n")
        self.converged()
        # the agent logs in with it: config check connects as both users
        code, out = self.haadm_json("config", "check", "-c", sb.conf(2))
        self.assertEqual(code, 0, out)
        self.assertTrue(any("as repl (replication)" in c["check"] and c["level"] == "ok"
                            for c in out["checks"]), out["checks"])
        # core dumps off in every agent
        for n in (1, 2, 3):
            with open(f"/proc/{sb.agent_pid(n)}/limits") as f:
                self.assertRegex(f.read(), r"(?m)^Max core file size\s+0\s+0\s")

    def test_1_crash_failover_with_salvage(self):
        """kill -9 of the primary's mariadbd, its agent alive: the agent salvages its binlog into
        the candidate through mariadb-binlog | mariadb, logged in with the agent's password
        from an option file; the other replica repoints (CHANGE MASTER)."""
        sb = self.sb
        p = self.primary()
        self.write(p, 100)
        self.converged()
        os.kill(sb.db_pid(p), signal.SIGKILL)
        s = sb.wait_new_primary(f"node{p}", timeout=90)
        fo = s["failover"]
        # the salvage ran its client, logged in with the agent's password (a refused login
        # still ends "done", with the client's error in the detail)
        self.assertEqual(fo["salvage"], "done", fo)
        self.assertRegex(fo.get("salvage_detail") or "", r"transactions from \d+ of \d+ binlog "
                                                         r"files applied", fo)
        self.assertNotRegex(fo["salvage_detail"], r"failed|denied|ERROR", fo)
        print(f"\n  salvage: {fo['salvage_detail']}")
        # the old primary comes back and rejoins as a replica (CHANGE MASTER once more)
        sb.up()
        s = self.converged(90)
        self.assertEqual(sb.node(s, f"node{p}")["role"], "replica")

    def test_2_switchover(self):
        sb = self.sb
        s = sb.status()
        target = next(x["name"] for x in s["nodes"] if x["name"] != s["primary"])
        code, out = self.haadm_json("failover", "--to", target, timeout=120)
        self.assertEqual((code, out["result"]), (0, "done"), out)
        s = self.converged()
        self.assertEqual(s["primary"], target)

    def test_3_backup(self):
        """mariadb-backup logs in with the agent's password from its option file; the archive's
        mariadb-binlog too. The sampler sees them run."""
        sb = self.sb
        self.write(self.primary(), 20000)
        self.converged()
        code, out = self.haadm_json("backup", "run", "--wait", timeout=600)
        self.assertEqual((code, out["result"]), (0, "done"), out)
        code, cat = self.haadm_json("backup", "list")
        b = next(x for x in cat["backups"] if x["id"] == out["id"])
        self.assertEqual(b["state"], "done", b)
        # the archive streams the primary's binlog with the same password
        p = self.primary()
        pos = sb.sql(p, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: (sb.status().get("archive") or {}).get("head_gtid") == pos, 60,
                    what="the binlog archive at the primary's position")
        seen = dict(self.sampler.seen)
        self.assertGreater(seen.get("mariadb-backup --backup", 0), 0,
                           f"the sampler never saw mariadb-backup --backup run: {seen}")
        self.assertGreater(seen.get("mariadb-binlog", 0), 0,
                           f"the sampler never saw the archive's mariadb-binlog: {seen}")

    def test_4_reclone(self):
        """haadm node reclone of a replica: restored, restarted, reset; its agent repoints it
        with the replication password."""
        sb = self.sb
        s = sb.status()
        n = next(int(x["name"][-1]) for x in s["nodes"] if x["name"] != s["primary"])
        code, out = self.haadm_json("node", "reclone", f"node{n}", conf=n, timeout=600)
        self.assertEqual((code, out["result"]), (0, "done"), out)
        s = self.converged(90)
        self.assertEqual(sb.node(s, f"node{n}")["role"], "replica")
        shutil.rmtree(out.get("old_datadir") or "/nonexistent", ignore_errors=True)

    def test_5_nothing_leaked(self):
        """No password (raw, trimmed, or escaped for SQL or an option file) in any process's
        argv or environment while all of the above ran, in the agents' logs, in their data
        directories (raft log, scratch: the option files are gone), in events or status."""
        sb = self.sb
        self.assertGreater(self.sampler.passes, 100, "the sampler hardly ran")
        print(f"\n  sampler: {self.sampler.passes} passes; samples of the sandbox's processes: "
              f"{dict(sorted(self.sampler.seen.items()))}")
        self.assertEqual(self.sampler.leaks, [], "a password in a process's argv/environment")
        found = []
        for n in (1, 2, 3):
            paths = [os.path.join(sb.node_dir(n), "agent.log")]
            for d, _, files in os.walk(os.path.join(sb.node_dir(n), "agent")):
                paths += [os.path.join(d, f) for f in files]
            for p in paths:
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                found += [p for nd in NEEDLES if nd in data]
        self.assertEqual(found, [], "a password in these files")
        for args in (("events",), ("status",), ("backup", "list")):
            r = sb.haadm(*args, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            for nd in NEEDLES:
                self.assertNotIn(nd, r.stdout.encode(), f"a password in haadm {args}")
        # the events did record what happened
        names = [e["name"] for e in sb.events()]
        for name in ("failover-done", "failover-salvaged"):
            self.assertIn(name, names)


class SecretFilesTest(unittest.TestCase):
    """haagentd --check on a configuration whose secret files break the rule (no database)."""

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="haagent-secrets-")
        self.addCleanup(shutil.rmtree, self.d, ignore_errors=True)
        self.files = {}
        for name, text in (("db.password", DB_PW), ("repl.password", REPL_PW),
                           ("backup.key", "ab" * 32)):
            p = os.path.join(self.d, name)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.chmod(p, 0o600)
            self.files[name] = p

    def check(self, node_section="node1", agent_node="node1"):
        conf = os.path.join(self.d, "haagent.conf")
        with open(conf, "w") as f:
            f.write(f"[agent]\nnode = {agent_node}\ndata_dir = {self.d}/data\n"
                    f"db_password_file = {self.files['db.password']}\n"
                    f"repl_password_file = {self.files['repl.password']}\n"
                    f"[backup]\nrepository = {self.d}/repo\n"
                    f"key_file = {self.files['backup.key']}\n"
                    f"[node {node_section}]\nid = 1\naddress = 127.0.0.201\nraft_port = 7100\n"
                    "rpc_port = 7200\ndb_port = 3306\n"
                    "[tls]\ninsecure = yes\n")  # the password files are under test here
        r = subprocess.run([HAAGENTD, "-c", conf, "--check"], capture_output=True, text=True,
                           timeout=30)
        return r.returncode, r.stdout + r.stderr

    def test_modes_and_owners(self):
        code, out = self.check()
        self.assertEqual(code, 0, out)
        for name, key in (("db.password", "[agent] db_password_file"),
                          ("repl.password", "[agent] repl_password_file"),
                          ("backup.key", "[backup] key_file")):
            p = self.files[name]
            with self.subTest(name=name, mode="0644"):
                os.chmod(p, 0o644)
                code, out = self.check()
                self.assertEqual(code, 3, out)
                self.assertIn(f"{key}: {p} is world-readable (mode 0644)", out)
                self.assertIn(f"HINT: chmod 600 {p}", out)
            with self.subTest(name=name, mode="0660"):
                os.chmod(p, 0o660)
                code, out = self.check()
                self.assertEqual(code, 3, out)
                self.assertIn(f"{key}: {p} grants its group more than reading (mode 0660)",
                              out)
                self.assertIn(f"chmod 600 {p}", out)
            with self.subTest(name=name, mode="0640"):
                os.chmod(p, 0o640)  # a group that only reads: allowed
                code, out = self.check()
                self.assertEqual(code, 0, out)
            if os.geteuid() == 0:
                with self.subTest(name=name, owner="nobody"):
                    os.chmod(p, 0o600)
                    os.chown(p, 65534, 65534)
                    code, out = self.check()
                    self.assertEqual(code, 3, out)
                    self.assertIn(f"{key}: {p} is owned by", out)
                    self.assertIn(f"HINT: chown root {p}", out)
                    os.chmod(p, 0o660)  # and 0660 with another owner: refused too
                    code, out = self.check()
                    self.assertEqual(code, 3, out)
                    self.assertIn(p, out)
                    os.chown(p, 0, 0)
            os.chmod(p, 0o600)
        code, out = self.check()
        self.assertEqual(code, 0, out)

    def test_node_named_dot_dot(self):
        code, out = self.check(node_section="..", agent_node="..")
        self.assertEqual(code, 3, out)
        self.assertIn("bad node name '..' in the section header", out)
        code, out = self.check(agent_node="..")
        self.assertEqual(code, 3, out)
        self.assertIn("[agent] node: '..' is not a name", out)
        # haadm refuses it as an argument before it asks anyone
        r = subprocess.run([HAADM, "-a", "127.0.0.201:7200", "node", "maintenance", "..", "on"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("'..' is not a node name", r.stderr)


if __name__ == "__main__":
    unittest.main()
