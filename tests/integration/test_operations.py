"""Running it for real: `haadm config check` against real databases (good config, bad file,
missing privileges, unsafe credentials file), the install layout with its systemd unit, the
example configuration, and the log line format journald receives."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import HAADM, HAAGENTD, SRC, Sandbox

FIRST = 111


class OperationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(first=FIRST)
        cls.addClassCleanup(cls.sb.destroy)
        cls.sb.up()
        cls.sb.wait_for(cls.sb.whole, 30, what="a whole cluster")

    def check(self, conf, *extra):
        r = subprocess.run([HAADM, "config", "check", "-c", conf, "--json", *extra],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, json.loads(r.stdout)

    def copy_conf(self, n, **repl):
        """A copy of node n's config with some [agent] keys replaced."""
        with open(self.sb.conf(n)) as f:
            text = f.read()
        for k, v in repl.items():
            text, count = re.subn(rf"(?m)^{k}\s*=.*$", f"{k} = {v}", text)
            if count == 0:
                text = text.replace("[agent]\n", f"[agent]\n{k} = {v}\n", 1)
        fd, path = tempfile.mkstemp(dir=self.sb.dir, suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_config_check_good(self):
        code, out = self.check(self.sb.conf(2))
        self.assertEqual(code, 0, out)
        self.assertTrue(out["ok"])
        names = [c["check"] for c in out["checks"]]
        self.assertIn("agent user privileges", names)
        self.assertTrue(any("as repl (replication)" in n for n in names))
        self.assertTrue(all(c["level"] == "ok" for c in out["checks"]), out["checks"])
        # text mode
        r = subprocess.run([HAADM, "-c", self.sb.conf(1), "config", "check"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration ok", r.stdout)

    def test_config_check_bad_file(self):
        path = self.copy_conf(1, probe_intervall_ms="100")
        code, out = self.check(path)
        self.assertEqual(code, 3)
        self.assertFalse(out["ok"])
        self.assertRegex(out["checks"][0]["detail"], r":\d+: \[agent\] probe_intervall_ms: "
                                                     r"unknown key")
        # a credentials file others can read is refused
        pw = os.path.join(self.sb.dir, "open.password")
        with open(pw, "w") as f:
            f.write("x\n")
        os.chmod(pw, 0o644)
        code, out = self.check(self.copy_conf(1, db_password_file=pw))
        self.assertEqual(code, 3)
        self.assertIn("world-readable", out["checks"][0]["detail"])

    def test_config_check_missing_privileges(self):
        sb = self.sb
        primary = int(sb.status()["primary"][-1])
        # created on the primary, so that it exists on every node
        sb.sql(primary, "CREATE USER IF NOT EXISTS 'weakagent'@'%' IDENTIFIED BY 'weak'; "
                        "GRANT PROCESS, SLAVE MONITOR ON *.* TO 'weakagent'@'%'")
        pw = os.path.join(sb.dir, "weak.password")
        with open(pw, "w") as f:
            f.write("weak\n")
        os.chmod(pw, 0o600)
        code, out = self.check(self.copy_conf(2, db_user="weakagent", db_password_file=pw))
        self.assertEqual(code, 10, out)
        priv = [c for c in out["checks"] if c["check"] == "agent user privileges"][0]
        self.assertEqual(priv["level"], "fail")
        for what in ("set read_only", "kill client sessions", "CHANGE MASTER",
                     "GRANT READ_ONLY ADMIN, CONNECTION ADMIN, REPLICATION SLAVE ADMIN"):
            self.assertIn(what, priv["detail"])
        self.assertNotIn("see every session", priv["detail"])  # PROCESS was granted
        # the grants docs/runbook.md gives are enough
        sb.sql(primary, "CREATE USER IF NOT EXISTS 'runbookagent'@'%' IDENTIFIED BY 'weak'; "
                        "GRANT READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS, REPLICATION SLAVE "
                        "ADMIN, SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO "
                        "'runbookagent'@'%'; GRANT CREATE, INSERT, DELETE, SELECT ON haagent.* "
                        "TO 'runbookagent'@'%'")
        code, out = self.check(self.copy_conf(2, db_user="runbookagent", db_password_file=pw))
        priv = [c for c in out["checks"] if c["check"] == "agent user privileges"][0]
        self.assertEqual(priv["level"], "ok", priv)
        with open(os.path.join(SRC, "docs", "runbook.md")) as f:
            self.assertIn("GRANT READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS, REPLICATION SLAVE "
                          "ADMIN, SLAVE MONITOR,", f.read())
        # a wrong password is a failed connection, with a hint
        with open(pw, "w") as f:
            f.write("wrong\n")
        code, out = self.check(self.copy_conf(2, db_user="weakagent", db_password_file=pw))
        self.assertEqual(code, 10)
        failed = [c for c in out["checks"] if c["level"].lower() == "fail"]
        self.assertIn("Access denied", failed[0]["detail"])

    def test_install_layout_and_unit(self):
        build = os.path.dirname(HAAGENTD)
        dest = tempfile.mkdtemp(prefix="haagent-install-")
        try:
            r = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest),
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            files = {os.path.relpath(os.path.join(d, f), dest)
                     for d, _, fs in os.walk(dest) for f in fs}
            prefix = next(p for p in ("usr/local", "usr") if f"{p}/bin/haadm" in files)
            for want in ("sbin/haagentd", "bin/haadm", "lib/systemd/system/haagentd.service",
                         "lib/sysusers.d/haagent.conf", "lib/tmpfiles.d/haagent.conf",
                         "share/doc/haagent/haagent.conf.example",
                         "share/doc/haagent/runbook.md", "share/doc/haagent/security.md",
                         "share/doc/haagent/haproxy.cfg"):
                self.assertIn(f"{prefix}/{want}", files)
            unit = os.path.join(dest, prefix, "lib/systemd/system/haagentd.service")
            with open(unit) as f:
                text = f.read()
            self.assertIn(f"ExecStart=/{prefix}/sbin/haagentd -c /etc/haagent/haagent.conf",
                          text)
            for hardening in ("User=haagent", "NoNewPrivileges=yes", "ProtectSystem=strict",
                              "Restart=on-failure", "StateDirectory=haagent"):
                self.assertIn(hardening, text)
            # systemd accepts every directive, strictly (the binary path swapped for one that
            # exists; the checker fails on any warning, and on copies broken on purpose)
            if shutil.which("systemd-analyze"):
                r = subprocess.run(["/usr/bin/python3",
                                    os.path.join(SRC, "tests", "systemd", "verify_unit.py"),
                                    unit, HAAGENTD,
                                    os.path.join(dest, prefix, "lib/sysusers.d/haagent.conf")],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for feature in ("ReadWritePaths=-/srv/haagent-backups", "LimitCORE=0",
                            "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_KILL"):
                self.assertIn(feature, text)
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def test_example_config_complete_and_valid(self):
        r = subprocess.run([HAAGENTD, "--help-config"], capture_output=True, text=True)
        keys, section = [], None
        for line in r.stdout.splitlines():
            m = re.match(r"^\[(\w+)", line)
            if m:
                section = m.group(1)
            m = re.match(r"^  (\w+)\s", line)
            if m and section != "node":
                keys.append(m.group(1))
        with open(os.path.join(SRC, "deploy", "haagent.conf.example")) as f:
            example = f.read()
        for k in keys:
            self.assertRegex(example, rf"(?m)^#?{k} =", f"{k} is not in the example")
        # and it is what the generator makes of the current keys
        gen = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "deploy",
                              "gen-example-config.py"), HAAGENTD], capture_output=True, text=True)
        self.assertEqual(gen.stdout, example,
                         "regenerate: deploy/gen-example-config.py build/haagentd > "
                         "deploy/haagent.conf.example")
        d = tempfile.mkdtemp(prefix="haagent-example-")
        try:
            for name in ("db.password", "repl.password"):
                p = os.path.join(d, name)
                with open(p, "w") as f:
                    f.write("secret\n")
                os.chmod(p, 0o600)
            conf = os.path.join(d, "haagent.conf")
            with open(conf, "w") as f:
                f.write(example.replace("/etc/haagent/", d + "/")
                        .replace("/var/lib/haagent", os.path.join(d, "data")))
            # without its certificates the check refuses it, naming the file
            r = subprocess.run([HAAGENTD, "-c", conf, "--check"], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("tls", r.stderr)
            r = subprocess.run([HAADM, "cert", "cluster", "--dir", os.path.join(d, "tls"), "-c",
                                conf], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = subprocess.run([HAAGENTD, "-c", conf, "--check"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("TLS certificate ok", r.stdout)
            # another node's certificate is refused for what it is
            os.replace(os.path.join(d, "tls", "node2.crt"), os.path.join(d, "tls", "node1.crt"))
            os.replace(os.path.join(d, "tls", "node2.key"), os.path.join(d, "tls", "node1.key"))
            r = subprocess.run([HAAGENTD, "-c", conf, "--check"], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not node node1 with raft id 1", r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_log_lines_are_structured(self):
        """journald keeps stderr lines as they are: level, node, event, key=value fields."""
        with open(os.path.join(self.sb.node_dir(1), "agent.log")) as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
        self.assertGreater(len(lines), 5)
        pat = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) +'
                         r'node1 [a-z][a-z0-9-]*( [a-z_]+=("[^"]*"|\S*))*$')
        bad = [line for line in lines if not pat.match(line)]
        self.assertEqual(bad, [], "log lines that do not follow the format")


if __name__ == "__main__":
    unittest.main()
