"""Network faults between sandbox nodes on loopback.

Loopback connections leave from 127.0.0.1 whatever node sends them, so rules on addresses alone
cannot tell the nodes apart. Instead every node's processes (its mariadbd and its haagentd) are
put in a cgroup of their own, and nftables matches the *sending socket's cgroup*: a cut between
node A and node B drops what A's processes send to B's address and what B's send to A's. The rules
live in one table owned by the test and are removed afterwards; nothing else is touched.

nft resolves cgroup names under /sys/fs/cgroup; where cgroup v2 is mounted elsewhere (a hybrid
hierarchy), the node's cgroup is bind-mounted there for the duration of the test."""

import os
import subprocess

CG_ROOT = "/sys/fs/cgroup"


def _cgroup2_mount():
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    raise RuntimeError("no cgroup v2 mount: network fault tests need one")


def _nft(*args, check=True):
    r = subprocess.run(["nft", *args], capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)}: {r.stderr.strip()}")
    return r


class NetFaults:
    """Create it before the sandbox starts and pass cgroup_prefix to the Sandbox: a socket keeps
    the cgroup it was created in, so the nodes' processes must start inside their cgroups."""

    def __init__(self, tag, ip_of):
        self.ip_of = ip_of
        self.tag = tag
        self.table = f"haagent_{tag}"
        self.cg2 = _cgroup2_mount()
        self.names = {n: f"haagent-{tag}-node{n}" for n in (1, 2, 3)}
        self.bound = []
        for n, name in self.names.items():
            real = os.path.join(self.cg2, name)
            os.makedirs(real, exist_ok=True)
            if os.path.realpath(self.cg2) != os.path.realpath(CG_ROOT):
                seen = os.path.join(CG_ROOT, name)
                os.makedirs(seen, exist_ok=True)
                if not os.path.ismount(seen):
                    subprocess.run(["mount", "--bind", real, seen], check=True, timeout=10)
                    self.bound.append(seen)
        self.cgroup_prefix = os.path.join(self.cg2, f"haagent-{tag}")
        _nft("add", "table", "inet", self.table)
        _nft("add", "chain", "inet", self.table, "out",
             "{ type filter hook output priority 0; policy accept; }")

    def members(self, n):
        with open(os.path.join(self.cg2, self.names[n], "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def cut(self, a, b):
        """Drops everything node a sends to node b and everything b sends to a."""
        for x, y in ((a, b), (b, a)):
            _nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
                 f'"{self.names[x]}"', "ip", "daddr", self.ip_of(y), "counter", "drop")

    def cut_oneway(self, a, b):
        """Drops what node a sends to node b; b's packets still reach a (an asymmetric
        partition: a hears b, b does not hear a)."""
        _nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
             f'"{self.names[a]}"', "ip", "daddr", self.ip_of(b), "counter", "drop")

    def lossy(self, a, b, percent):
        """Drops about `percent` % of the packets between nodes a and b, both ways, at random
        (packet loss; latency cannot be injected here: this kernel has no netem qdisc)."""
        for x, y in ((a, b), (b, a)):
            _nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
                 f'"{self.names[x]}"', "ip", "daddr", self.ip_of(y), "numgen", "random", "mod",
                 "100", "<", str(int(percent)), "counter", "drop")

    def cut_port(self, a, b, port):
        """Drops one TCP service between two nodes: what a sends to b's port, and what b sends
        back from it (both directions: a one-way drop lets data through until the window
        fills). Everything else between them flows."""
        _nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
             f'"{self.names[a]}"', "ip", "daddr", self.ip_of(b), "tcp", "dport", str(port),
             "counter", "drop")
        _nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
             f'"{self.names[b]}"', "ip", "daddr", self.ip_of(a), "tcp", "sport", str(port),
             "counter", "drop")

    def dropped(self):
        """Packets dropped by the current rules (proof that a cut cut something)."""
        out = _nft("list", "chain", "inet", self.table, "out").stdout
        total = 0
        for line in out.splitlines():
            if "packets" in line:
                total += int(line.split("packets")[1].split()[0])
        return total

    def isolate(self, a):
        for b in (1, 2, 3):
            if b != a:
                self.cut(a, b)

    def heal(self):
        _nft("flush", "chain", "inet", self.table, "out")

    def close(self):
        _nft("delete", "table", "inet", self.table, check=False)
        # processes go back to the root cgroup so the node cgroups can be removed
        for n, name in self.names.items():
            path = os.path.join(self.cg2, name, "cgroup.procs")
            try:
                with open(path) as f:
                    pids = f.read().split()
                for pid in pids:
                    try:
                        with open(os.path.join(self.cg2, "cgroup.procs"), "w") as f:
                            f.write(pid)
                    except OSError:
                        pass
            except OSError:
                pass
        for seen in self.bound:
            subprocess.run(["umount", seen], capture_output=True, timeout=10)
            try:
                os.rmdir(seen)
            except OSError:
                pass
        for name in self.names.values():
            try:
                os.rmdir(os.path.join(self.cg2, name))
            except OSError:
                pass
