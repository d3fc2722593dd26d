"""Integration-test harness: a real three-node sandbox (mariadbd + haagentd) in a temporary
directory, on its own loopback addresses. Every process it starts is killed (by PID, from the
sandbox's pid files) and the directory removed when the test class ends, even on failure."""

import atexit
import json
import os
import re
import socket
import ssl
import shutil
import signal
import subprocess
import tempfile
import time

SRC = os.environ.get("HA_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SANDBOX = os.path.join(SRC, "deploy", "sandbox.sh")
HAADM = os.environ.get("HAADM", os.path.join(SRC, "build", "haadm"))
HAAGENTD = os.environ.get("HAAGENTD", os.path.join(SRC, "build", "haagentd"))

_live = []


def _cleanup_all():
    for sb in list(_live):
        sb.destroy()


atexit.register(_cleanup_all)


def wait_for(pred, timeout, interval=0.1, what="condition"):
    """Polls pred until it returns a truthy value; returns it, or raises after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the predicate may race a restarting process
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def query_datadir(tmp, datadir, sql):
    """Runs sql on a throwaway mariadbd started on datadir (no network; its socket and log in
    tmp), and stops it."""
    sock = os.path.join(tmp, "q.sock")
    p = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={datadir}",
                          f"--socket={sock}", f"--pid-file={tmp}/q.pid", "--skip-networking",
                          "--user=root", f"--log-error={tmp}/q.err",
                          "--innodb-buffer-pool-size=64M"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def run():
            r = subprocess.run(["mariadb", "--no-defaults", "-uroot", f"--socket={sock}",
                                "-N", "-B", "-e", sql], capture_output=True, text=True,
                               timeout=30)
            return r if r.returncode == 0 else None
        return wait_for(run, 60, interval=0.2, what="the restored server").stdout.strip()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)


class Sandbox:
    def __init__(self, first, snapshot_threshold=None, cgroup_prefix=None, insecure=False,
                 env=None):
        self.dir = tempfile.mkdtemp(prefix="haagent-it-")
        self.first = first
        self.insecure = insecure
        self.args = ["bash", SANDBOX, "--dir", self.dir, "--net", "127.0.0.", "--first", str(first)]
        if snapshot_threshold:
            self.args += ["--snapshot-threshold", str(snapshot_threshold)]
        if insecure:
            self.args += ["--insecure"]
        self.env = dict(os.environ, HAADM=HAADM, HAAGENTD=HAAGENTD, **(env or {}))
        if cgroup_prefix:
            self.env["HA_SANDBOX_CGROUP"] = cgroup_prefix
        self.destroyed = False
        self.main_conf = 1  # the node whose configuration haadm uses by default
        _live.append(self)

    # ---- lifecycle ----
    def up(self, timeout=180):
        r = subprocess.run(self.args + ["up"], env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"sandbox up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{self.logs()}")
        return r.stdout

    def run_sandbox(self, *args, timeout=60):
        r = subprocess.run(self.args + list(args), env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"sandbox {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    def destroy(self):
        if self.destroyed:
            return
        self.destroyed = True
        # Resume anything a test stopped, so that SIGTERM can act; then the script stops by pid.
        for n in self.node_numbers():
            for p in (self.agent_pid(n), self.db_pid(n)):
                if p:
                    try:
                        os.kill(p, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
        subprocess.run(self.args + ["stop"], env=self.env, capture_output=True, timeout=120)
        findings = self.sanitizer_reports()
        if os.environ.get("HA_KEEP_SANDBOX"):
            print(f"kept {self.dir} (HA_KEEP_SANDBOX)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _live:
            _live.remove(self)
        if findings:
            raise AssertionError("sanitizer reports in agent logs:\n" + "\n".join(findings))

    def sanitizer_reports(self):
        """Lines of AddressSanitizer/LeakSanitizer/UBSan reports in the agents' logs (the agents
        log to these files, so a sanitizer build's findings land there)."""
        out = []
        for n in self.node_numbers():
            p = os.path.join(self.node_dir(n), "agent.log")
            if not os.path.exists(p):
                continue
            with open(p, errors="replace") as f:
                lines = f.readlines()
            for i, line in enumerate(lines):
                if "Sanitizer" in line or "runtime error:" in line:
                    out.append(f"node{n}: " + "".join(lines[i:i + 12]))
                    break
        return out

    # ---- facts ----
    def ip(self, n):
        return f"127.0.0.{self.first + n - 1}"

    def node_dir(self, n):
        return os.path.join(self.dir, f"node{n}")

    def conf(self, n):
        return os.path.join(self.node_dir(n), "haagent.conf")

    def _pid(self, path):
        """The pid in path when that process is alive (not a zombie) and is ours."""
        try:
            with open(path) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError, IndexError):
            return None
        if state == "Z" or (b"haagentd" not in cmd and b"mariadbd" not in cmd):
            return None
        return pid

    def agent_pid(self, n):
        return self._pid(os.path.join(self.node_dir(n), "agent.pid"))

    def db_pid(self, n):
        return self._pid(os.path.join(self.node_dir(n), "mariadbd.pid"))

    def node_numbers(self):
        """Every node the sandbox made: the first three and any added (add-node)."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        return sorted(int(x[4:]) for x in names if x.startswith("node") and x[4:].isdigit())

    def logs(self):
        out = []
        for n in self.node_numbers():
            p = os.path.join(self.node_dir(n), "agent.log")
            if os.path.exists(p):
                with open(p) as f:
                    out.append(f"--- node{n} agent.log (tail) ---\n" + "".join(f.readlines()[-25:]))
        return "\n".join(out)

    def log_lines(self, pattern, last=80):
        """The last `last` lines of every agent's log that match the regular expression
        `pattern`, each led by its node: a failure's explanation."""
        out = []
        for n in self.node_numbers():
            p = os.path.join(self.node_dir(n), "agent.log")
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += [f"node{n}: {x}" for x in f if re.search(pattern, x)][-last:]
        return "".join(out)

    # ---- tools ----
    def tls_file(self, name):
        """A file the sandbox's `haadm cert cluster` wrote (ca.crt, admin.key, monitor.pem...)."""
        return os.path.join(self.dir, "tls", name)

    def tls_args(self, who="admin"):
        """haadm's options for talking to an agent as operator `who` without a config file."""
        if self.insecure:
            return ["--insecure"]
        return ["--ca", self.tls_file("ca.crt"), "--cert", self.tls_file(f"{who}.crt"),
                "--key", self.tls_file(f"{who}.key")]

    def tls_context(self, who="admin", ca=None, cert=None, key=None):
        """A client TLS context presenting operator (or node) `who`'s certificate, or the given
        files; None for an insecure sandbox."""
        if self.insecure and cert is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.load_verify_locations(ca or self.tls_file("ca.crt"))
        if who is not None or cert is not None:
            ctx.load_cert_chain(cert or self.tls_file(f"{who}.crt"), key or self.tls_file(f"{who}.key"))
        return ctx

    def connect(self, ip, port, who="admin", timeout=3, **files):
        """A socket to an agent's port, TLS as `who` unless the sandbox is insecure."""
        s = socket.create_connection((ip, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as haadm and the agents do
        ctx = self.tls_context(who, **files)
        if ctx is None:
            return s
        try:
            return ctx.wrap_socket(s)
        except BaseException:
            s.close()
            raise

    def haadm(self, *args, conf_node=None, addr=None, timeout=15):
        conf_node = conf_node or self.main_conf
        cmd = [HAADM]
        cmd += ["-a", addr] + self.tls_args() if addr else ["-c", self.conf(conf_node)]
        cmd += list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def status(self, conf_node=None, addr=None, local=False):
        args = ["status", "--json"] + (["--local"] if local else [])
        r = self.haadm(*args, conf_node=conf_node, addr=addr)
        if not r.stdout.strip():
            raise AssertionError(f"haadm status printed nothing (exit {r.returncode}): {r.stderr}")
        s = json.loads(r.stdout)
        s["_exit"] = r.returncode
        return s

    def sql(self, n, query, timeout=20):
        r = subprocess.run(
            ["mariadb", "--no-defaults", "-uroot", f"--socket={self.node_dir(n)}/mariadbd.sock",
             "--connect-timeout=5", "-N", "-B", "-e", query],
            capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"sql on node{n} failed: {r.stderr}")
        return r.stdout.strip()

    def io_pos(self, n):
        """Gtid_IO_Pos of node n's SHOW SLAVE STATUS: what its IO thread has received ("" when
        it does not replicate)."""
        r = subprocess.run(
            ["mariadb", "--no-defaults", "-uroot", f"--socket={self.node_dir(n)}/mariadbd.sock",
             "--connect-timeout=5", "-E", "-e", "SHOW SLAVE STATUS"],
            capture_output=True, text=True, timeout=10)
        for line in r.stdout.splitlines():
            if line.strip().startswith("Gtid_IO_Pos:"):
                return line.split(":", 1)[1].strip()
        return ""

    def tcp_sql(self, n, query, timeout=10):
        """A client write over TCP, as an application would do it."""
        return subprocess.run(
            ["mariadb", "--no-defaults", "-h", self.ip(n), "-P", "3306", "-uapp", "-papp",
             "--connect-timeout=3", "-N", "-B", "-e", query],
            capture_output=True, text=True, timeout=timeout)

    def wait_for(self, pred, timeout, interval=0.1, what="condition"):
        """wait_for() that adds the agents' recent logs to the failure message."""
        try:
            return wait_for(pred, timeout, interval, what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None

    def whole(self):
        """The status when the cluster is whole (every database up and every agent reachable,
        a writable primary, every other node replicating), else None."""
        s = self.status()
        if not s["primary"] or self.node(s, s["primary"])["read_only"] is not False:
            return None
        for n in s["nodes"]:
            if n["db"] != "up" or n["agent"] != "reachable":
                return None
            if n["name"] != s["primary"] and not (n["role"] == "replica" and n["io_running"]):
                return None
        return s

    def wait_new_primary(self, old, timeout):
        """The status, asked of any agent, once a primary other than `old` is writable and
        authoritative with its failover done."""
        def pred():
            for c in self.node_numbers():
                try:
                    s = self.status(conf_node=c)
                except Exception:  # noqa: BLE001 - that agent may be mid-restart
                    continue
                p = s.get("primary")
                if (p and p != old and s.get("authoritative") and
                        self.node(s, p)["read_only"] is False and
                        (s.get("failover") or {}).get("phase") == "done"):
                    return s
            return None
        return self.wait_for(pred, timeout, interval=0.1, what=f"a primary other than {old}")

    def restart_agents_with(self, extra, before_start=None):
        """Restarts every agent with `extra` appended to its config ("" restores it), and waits
        for a whole cluster. before_start: called while every agent is stopped."""
        for n in (1, 2, 3):
            pid = self.agent_pid(n)
            if pid:
                os.kill(pid, signal.SIGTERM)
        self.wait_for(lambda: all(self.agent_pid(n) is None for n in (1, 2, 3)), 15,
                      what="agents stopped")
        for n in (1, 2, 3):
            conf = self.conf(n)
            with open(conf) as f:
                text = f.read().split("\n# test settings\n")[0]
            with open(conf, "w") as f:
                f.write(text + (f"\n# test settings\n{extra}" if extra else ""))
        if before_start:
            before_start()
        self.up()
        self.wait_leader()
        # restarting every agent at once loses the quorum for a moment: the primary is fenced
        # until its agent holds the write lease again
        self.wait_for(self.whole, 30, what="a whole cluster after restarting the agents")

    def events(self):
        r = self.haadm("events", "--json")
        return json.loads(r.stdout)["events"]

    def writable_nodes(self):
        """Nodes whose mariadbd answers read_only=0 (asked directly, over the socket)."""
        out = []
        for n in (1, 2, 3):
            try:
                if self.sql(n, "SELECT @@global.read_only", timeout=5) == "0":
                    out.append(f"node{n}")
            except Exception:  # noqa: BLE001 - a stopped database is not writable
                pass
        return out

    def leader_of(self, s):
        return s.get("leader") if s.get("authoritative") else None

    def node(self, s, name):
        for x in s["nodes"]:
            if x["name"] == name:
                return x
        raise KeyError(name)

    def make_leader(self, name, tries=12):
        """Moves the raft leadership to node `name`: while another node leads, its agent is
        paused (SIGSTOP) past an election and resumed, so that one of the others wins. Every
        try is bounded; fails the test after `tries`."""
        for _ in range(tries):
            s = self.wait_leader()
            leader = self.leader_of(s)
            if leader == name:
                return s
            pid = self.agent_pid(int(leader[len("node"):]))
            os.kill(pid, signal.SIGSTOP)
            try:
                self.wait_leader(exclude=leader, timeout=10,
                                 conf_nodes=[n for n in self.node_numbers()
                                             if f"node{n}" != leader])
            finally:
                os.kill(pid, signal.SIGCONT)
        raise AssertionError(f"{name} did not become the raft leader in {tries} tries")

    def wait_leader(self, exclude=None, timeout=10, conf_nodes=(1, 2, 3)):
        def pred():
            for c in conf_nodes:
                try:
                    s = self.status(conf_node=c)
                except Exception:  # noqa: BLE001
                    continue
                leader = self.leader_of(s)
                if leader and leader != exclude:
                    return s
            return None
        return self.wait_for(pred, timeout, what=f"a raft leader other than {exclude}")
