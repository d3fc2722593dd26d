"""A randomized fault schedule ("nemesis") against a real three-node sandbox, with invariants
checked while it runs. Used by test_nemesis.py (a short CI schedule) and by
tests/bench/bench_soak.py (a long soak).

    seed = seed_from_env()                       # HA_NEMESIS_SEED replays a seed
    nem = Nemesis(sb, net, seed)                 # sb: harness.Sandbox, net: netfault.NetFaults
    nem.start()                                  # sampler, status watcher, writers
    nem.run(Schedule(seed).take(10))             # inject, hold, heal, check, one fault at a time
    nem.finish()                                 # heal everything, final acknowledged-write check
    print(nem.report()); assert not nem.violations

The schedule is drawn from random.Random(seed) only, before and independently of what the
cluster does: the same seed replays the same fault kinds, targets (as roles: "the primary", "the
raft leader's agent", "the second replica by name"), variants and durations. Which node a role
names is resolved when the fault is injected.

Faults (each injected, held for its drawn duration, healed):
  kill-db          kill -9 of a mariadbd (primary or replica), restarted after the hold
  kill-agent       kill -9 of an agent (the raft leader's, the primary's, a replica's)
  stop-db          SIGSTOP/SIGCONT of a mariadbd
  stop-agent       SIGSTOP/SIGCONT of an agent (the leader's included)
  partition        nftables cuts (netfault.py): isolate the primary, the leader or a replica,
                   cut one link (primary-replica, replica-replica), or one way only (a deaf
                   primary: it sends but hears nothing; a mute one: nothing it sends arrives)
  packet-loss      10-40 % of the packets dropped at random (nft numgen) on the primary's links,
                   one primary-replica link, or the leader's links. Latency is not injected: this
                   kernel has no netem qdisc (tc: "Specified qdisc kind is unknown")
  bad-credentials  the agent's password changed on the primary only (sql_log_bin=0) and its
                   sessions killed, so it must log in again; healed by restoring the password
  max-connections  max_connections lowered on the primary and filled with app connections
  long-ddl         an ALTER TABLE ... ALGORITHM=COPY that takes ~DDL_TARGET_S, optionally with
                   the primary killed while the replicas still apply it
  slow-sql         MASTER_DELAY on a replica, optionally with the primary killed meanwhile
  mid-promotion    the primary's mariadbd killed, then the candidate's as soon as `haadm status`
                   shows the failover promoting it

Invariants (each violation names the seed and the fault):
  - never two nodes answering @@read_only=0 at once. All three are sampled in parallel ten times a
    second over their unix sockets; a round where two nodes answer 0 with overlapping query
    windows is a double-writable sample. A SIGSTOPped mariadbd cannot answer: it is unknown, not
    writable — while frozen it cannot acknowledge anything. A node that answers 0 within
    RESUME_GRACE_S of its SIGCONT (the old primary waking up after a failover, before its agent
    fences it) is reported apart and is not a violation: it cannot acknowledge a write either
    (its semi-sync replicas follow the new primary), which the acknowledged-write check proves;
    a double-writable state that lasts beyond the grace is a violation.
  - no acknowledged write missing: several writer threads (each its own connection, each commit
    acknowledged separately) follow the primary `haadm status` names; after every fault and at
    the end every acknowledged id must be on the current primary.
  - after every heal, a writable primary (the one `haadm status` names, answering read_only=0)
    within HEAL_BOUND_S.
  - faults the documentation says must not cause a failover do not: the agent's credentials
    broken on the primary (the primary must also stay writable throughout), a stopped or killed
    agent, a mariadbd stopped for less than the hang timeout, faults on a replica alone.

Before every fault the cluster is whole (every node up and replicating, the replicas caught
up). A node left diverged (holding writes nobody acknowledged: legitimate after a partition of
the primary) is re-cloned as an operator would, with a fresh backup and `haadm node reclone`;
when every replica is diverged (after a loss), the agents are first restarted one at a time with
[backup] allow_primary = yes. A cluster that does not recover ends the schedule.

Per fault class: faults injected, failovers seen, lost acknowledged writes, double-writable
samples, the longest time without a writable node, the longest gap between acknowledged writes,
the time from the heal to a writable primary, nodes re-cloned. A fault's figures cover its
injection, hold, heal and repair (while a diverged node is re-cloned no replica acknowledges
semi-sync writes, so the write gap includes the re-clone).

Safety: traffic only to the sandbox's 127.0.0.0/8 addresses; signals only to the pids in the
sandbox's pid files (processes the sandbox started); network faults only through netfault.py's
own nftables table; no tc/netem."""

import bisect
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
import traceback
from collections import deque

import pymysql

from harness import HAADM

HANG_TIMEOUT_S = 8.0      # the agent's default hang_timeout_ms
HEAL_BOUND_S = 60.0       # a writable primary at most this long after a heal
WHOLE_BOUND_S = 120.0     # every node back (up, replicating) at most this long after a heal
CATCHUP_BOUND_S = 180.0   # the replicas caught up with the primary
RESUME_GRACE_S = 3.0      # see the module docstring
DDL_TARGET_S = 16.0       # the long DDL's duration on the primary (> apply_timeout_ms, 10 s)
BIG_ROWS = 200000         # rows of the table the long DDL rebuilds

KINDS = ("kill-db", "kill-agent", "stop-db", "stop-agent", "partition", "bad-credentials",
         "max-connections", "long-ddl", "slow-sql", "mid-promotion", "packet-loss")


def seed_from_env():
    """HA_NEMESIS_SEED when set (a replay), else a fresh random seed."""
    v = os.environ.get("HA_NEMESIS_SEED", "").strip()
    if v:
        return int(v)
    return int.from_bytes(os.urandom(4), "big")


def node_no(name):
    return int(name[4:])


def gtid_seq(pos, domain=0):
    """The sequence number of domain `domain` in a GTID position ("0-2-17,1-1-3" -> 17)."""
    for part in (pos or "").split(","):
        part = part.strip()
        if part.count("-") == 2:
            d, _, seq = part.split("-")
            if int(d) == domain:
                return int(seq)
    return 0


class Abort(Exception):
    """The cluster did not recover: the rest of the schedule would only measure that."""


# ---------------------------------------------------------------------------------------------
# The schedule

class Fault:
    def __init__(self, index, kind, target=None, hold=0.0, variant=None, pick=0, param=0.0,
                 param2=0.0):
        self.index = index
        self.kind = kind
        self.target = target      # role: primary, replica, leader
        self.hold = hold          # seconds between injection and healing
        self.variant = variant
        self.pick = pick          # which replica (0 or 1, by name) when a replica is targeted
        self.param = param        # kind-specific (MASTER_DELAY, delay before a kill)
        self.param2 = param2
        self.resolved = ""        # filled in when injected: the nodes the roles named

    def describe(self):
        s = f"#{self.index} {self.kind}"
        if self.variant:
            s += f" {self.variant}"
        if self.target:
            s += f" {self.target}" + (f"[{self.pick}]" if self.target == "replica" else "")
        if self.kind == "slow-sql":
            s += f" MASTER_DELAY={int(self.param)}"
            if self.variant == "kill-primary":
                s += f" kill-after={self.param2:.1f}s"
        if self.kind == "packet-loss":
            s += f" loss={int(self.param)}%"
        if self.kind == "long-ddl" and self.variant == "kill-primary":
            s += f" kill-after={self.param:.1f}s"
        s += f" hold={self.hold:.1f}s"
        if self.resolved:
            s += f" ({self.resolved})"
        return s

    def expect_no_failover(self):
        """The faults after which docs/failover.md promises no failover (and, for the agent's
        credentials, this test's brief: a database that is up is not down)."""
        if self.kind in ("bad-credentials", "stop-agent", "kill-agent"):
            return True
        if self.kind in ("kill-db", "stop-db") and self.target == "replica":
            return True
        if self.kind == "stop-db" and self.hold <= HANG_TIMEOUT_S - 1.0:
            return True
        if self.kind in ("slow-sql", "long-ddl") and self.variant == "plain":
            return True
        return False


def draw_fault(rng, kind, index):
    """One fault of `kind`. Every kind draws the same number of values whatever they are, so a
    seed always gives the same sequence."""
    pick = rng.randrange(2)
    if kind == "kill-db":
        return Fault(index, kind, rng.choice(("primary", "primary", "replica")),
                     rng.uniform(2, 8), pick=pick)
    if kind == "kill-agent":
        return Fault(index, kind, rng.choice(("leader", "primary", "replica")),
                     rng.uniform(2, 8), pick=pick)
    if kind == "stop-db":
        return Fault(index, kind, rng.choice(("primary", "primary", "replica")),
                     rng.uniform(2, 12), pick=pick)
    if kind == "stop-agent":
        return Fault(index, kind, rng.choice(("leader", "primary", "replica")),
                     rng.uniform(2, 12), pick=pick)
    if kind == "partition":
        variant = rng.choice(("isolate-primary", "isolate-leader", "isolate-replica",
                              "cut-primary-replica", "cut-replicas", "primary-deaf",
                              "primary-mute"))
        return Fault(index, kind, None, rng.uniform(3, 12), variant=variant, pick=pick)
    if kind == "bad-credentials":
        return Fault(index, kind, "primary", rng.uniform(4, 12), pick=pick)
    if kind == "max-connections":
        return Fault(index, kind, "primary", rng.uniform(3, 10), pick=pick)
    if kind == "long-ddl":
        variant = rng.choice(("kill-primary", "kill-primary", "plain"))
        return Fault(index, kind, "primary", rng.uniform(2, 5), variant=variant, pick=pick,
                     param=rng.uniform(0.5, 2.0))
    if kind == "slow-sql":
        variant = rng.choice(("kill-primary", "plain"))
        return Fault(index, kind, "replica", rng.uniform(3, 8), variant=variant, pick=pick,
                     param=rng.randint(4, 12), param2=rng.uniform(1, 3))
    if kind == "packet-loss":
        variant = rng.choice(("primary-links", "primary-replica", "leader-links"))
        return Fault(index, kind, None, rng.uniform(5, 12), variant=variant, pick=pick,
                     param=rng.randint(10, 40))
    if kind == "mid-promotion":
        return Fault(index, kind, "primary", rng.uniform(2, 6), pick=pick)
    raise ValueError(kind)


class Schedule:
    """Faults dealt from shuffled decks of the catalogue: every kind once per len(kinds)
    faults, in a seeded order, each with seeded targets, variants and durations."""

    def __init__(self, seed, kinds=KINDS):
        self.rng = random.Random(seed)
        self.kinds = tuple(kinds)
        self.deck = []
        self.count = 0

    def next(self):
        if not self.deck:
            self.deck = list(self.kinds)
            self.rng.shuffle(self.deck)
        self.count += 1
        return draw_fault(self.rng, self.deck.pop(0), self.count)

    def take(self, n):
        return [self.next() for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Observers

def root_conn(sb, n, timeout=2.0):
    return pymysql.connect(unix_socket=os.path.join(sb.node_dir(n), "mariadbd.sock"), user="root",
                           connect_timeout=timeout, read_timeout=timeout * 5,
                           write_timeout=timeout * 5, autocommit=True)


class Sampler:
    """Asks all three servers `SELECT @@global.read_only` at the same moment, `interval` apart,
    each over its own persistent unix-socket connection (a thread per node). A node that does
    not answer within `timeout` (stopped, dead, restarting) is unknown for that round."""

    def __init__(self, sb, interval=0.1, timeout=1.0):
        self.sb = sb
        self.interval = interval
        self.timeout = timeout
        self._cv = threading.Condition()
        self._gen = 0
        self._results = {}
        self._tick_t = {}
        self._stop = threading.Event()
        self._threads = []
        self.lock = threading.Lock()
        self.rounds = []          # (tick time, (v1, v2, v3)), v = 0, 1 or None (unknown)
        self.doubles = []         # dicts: t, nodes, overlap, resumed, label
        self.gaps = []            # (start, end): no node answered read_only=0 in between
        self._last_writable = None
        self._gap_open = False
        self.resumed_at = {}      # node -> monotonic time of its mariadbd's SIGCONT
        self.label = None         # the fault running now (set by the engine)

    def start(self):
        for n in (1, 2, 3):
            t = threading.Thread(target=self._worker, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._ticker, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self):
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(5)

    def note_resume(self, n):
        with self.lock:
            self.resumed_at[n] = time.monotonic()

    def _worker(self, n):
        conn, seen = None, 0
        sock = os.path.join(self.sb.node_dir(n), "mariadbd.sock")
        while not self._stop.is_set():
            with self._cv:
                while self._gen <= seen and not self._stop.is_set():
                    self._cv.wait(0.5)
                g = self._gen
                # the rounds this thread missed while it was busy: unknown
                for skipped in range(seen + 1, g):
                    if skipped in self._results:
                        self._results[skipped].setdefault(n, (None, 0.0, 0.0))
                seen = g
            v, t0 = None, time.monotonic()
            try:
                if conn is None:
                    conn = pymysql.connect(unix_socket=sock, user="root",
                                           connect_timeout=self.timeout,
                                           read_timeout=self.timeout,
                                           write_timeout=self.timeout, autocommit=True)
                t0 = time.monotonic()
                with conn.cursor() as cur:
                    cur.execute("SELECT @@global.read_only")
                    v = int(cur.fetchone()[0])
            except Exception:  # noqa: BLE001 - stopped, dead, restarting: unknown
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn, v = None, None
            t1 = time.monotonic()
            with self._cv:
                if g in self._results:
                    self._results[g][n] = (v, t0, t1)
                self._cv.notify_all()
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _ticker(self):
        pending = deque()
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_t:
                with self._cv:
                    self._gen += 1
                    g = self._gen
                    self._tick_t[g] = now
                    self._results[g] = {}
                    self._cv.notify_all()
                pending.append(g)
                next_t = max(next_t + self.interval, now + self.interval / 2)
            while pending:
                g = pending[0]
                with self._cv:
                    res = dict(self._results[g])
                if len(res) < 3 and now - self._tick_t[g] < 2 * self.timeout + 0.5:
                    break
                pending.popleft()
                with self._cv:
                    t = self._tick_t.pop(g)
                    del self._results[g]
                self._evaluate(t, res)
            time.sleep(0.01)

    def _evaluate(self, t, res):
        vals = tuple(res.get(n, (None, 0.0, 0.0))[0] for n in (1, 2, 3))
        writable = [n for n in (1, 2, 3) if vals[n - 1] == 0]
        with self.lock:
            self.rounds.append((t, vals))
            if writable:
                if self._gap_open:
                    self.gaps.append((self._last_writable if self._last_writable else t, t))
                    self._gap_open = False
                self._last_writable = t
            else:
                self._gap_open = True
            if len(writable) >= 2:
                wins = [res[n][1:] for n in writable]
                overlap = max(w[0] for w in wins) <= min(w[1] for w in wins)
                resumed = [n for n in writable
                           if t - self.resumed_at.get(n, -1e9) < RESUME_GRACE_S]
                self.doubles.append({"t": t, "nodes": writable, "overlap": overlap,
                                     "resumed": resumed, "label": self.label})

    # ---- queries for the engine ----
    def latest(self):
        with self.lock:
            return self.rounds[-1] if self.rounds else None

    def writable_since(self, since):
        """The nodes answering read_only=0 in the latest round taken after `since`, or None."""
        r = self.latest()
        if r is None or r[0] < since:
            return None
        return [n for n in (1, 2, 3) if r[1][n - 1] == 0]

    def longest_gap(self, t0, t1):
        """The longest stretch without a writable node overlapping [t0, t1]."""
        with self.lock:
            gaps = list(self.gaps)
            if self._gap_open:
                gaps.append((self._last_writable or t0, time.monotonic()))
        best = 0.0
        for a, b in gaps:
            if b >= t0 and a <= t1:
                best = max(best, min(b, t1) - max(a, t0))
        return best

    def rounds_between(self, t0, t1):
        with self.lock:
            i = bisect.bisect_left(self.rounds, (t0,))
            out = []
            for r in self.rounds[i:]:
                if r[0] > t1:
                    break
                out.append(r)
            return out


class StatusWatcher:
    """`haadm status --json` every `interval`, asking the nodes' configurations in turn when one
    does not answer. What the writers follow, like an application behind a proxy would."""

    def __init__(self, sb, interval=0.25):
        self.sb = sb
        self.interval = interval
        self.latest = None
        self.latest_t = 0.0
        self._k = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def poll(self):
        for _ in range(3):
            k = self._k
            try:
                r = self.sb.haadm("-t", "800", "status", "--json", conf_node=k, timeout=10)
                if r.stdout.strip():
                    s = json.loads(r.stdout)
                    now = time.monotonic()
                    with self._lock:
                        if now >= self.latest_t:
                            self.latest, self.latest_t = s, now
                    return s
            except Exception:  # noqa: BLE001 - a node mid-restart; ask another
                pass
            self._k = self._k % 3 + 1
        return None

    def _run(self):
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(15)

    def get(self):
        with self._lock:
            return self.latest, self.latest_t

    def fresh(self, timeout=30, authoritative=True):
        """A status taken now (by the leader when `authoritative`)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            s = self.poll()
            if s is not None:
                last = s
                if s.get("authoritative") or not authoritative:
                    return s
            time.sleep(0.2)
        if last is not None:
            return last
        raise Abort(f"no agent answered haadm status for {timeout} s")

    def writable_primary(self):
        s, _ = self.get()
        if not s or not s.get("primary"):
            return None
        for x in s["nodes"]:
            if x["name"] == s["primary"] and x.get("read_only") is False:
                return s["primary"]
        return None


class MultiWriter:
    """Several writer threads, each with its own connection to the primary `haadm status`
    names, each inserting numbered rows (autocommit): several commits in flight at once. An id
    is acknowledged when its INSERT returned OK; an id whose outcome is unknown (an error, a
    timeout) is never reused and never counted."""

    def __init__(self, sb, watch, threads=4, table="sandbox.nemesis", pace=0.02):
        self.sb = sb
        self.watch = watch
        self.nthreads = threads
        self.table = table
        self.pace = pace
        self.lock = threading.Lock()
        self.acked = {}           # id -> (monotonic time, node name)
        self.ack_times = []       # monotonic times, in order
        self.errors = deque(maxlen=200)
        self.n_errors = 0
        self._ids = None
        self._stop = threading.Event()
        self._threads = []

    def _connect(self, name):
        return pymysql.connect(host=self.sb.ip(node_no(name)), port=3306, user="app",
                               password="app", connect_timeout=2, read_timeout=5,
                               write_timeout=5, autocommit=True)

    def setup(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            name = self.watch.writable_primary()
            try:
                if name is None:
                    raise RuntimeError("no writable primary yet")
                c = self._connect(name)
                with c.cursor() as cur:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table} "
                                "(id BIGINT PRIMARY KEY, at TIMESTAMP(3) DEFAULT NOW(3))")
                    cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.table}")
                    first = int(cur.fetchone()[0]) + 1
                c.close()
                self._ids = itertools.count(first)
                return
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                self.watch.poll()
                time.sleep(0.2)

    def _run(self):
        conn, name = None, None
        while not self._stop.is_set():
            if conn is None:
                name = self.watch.writable_primary()
                if name is None:
                    time.sleep(0.05)
                    continue
                try:
                    conn = self._connect(name)
                except Exception as e:  # noqa: BLE001
                    self._error(f"connect {name}: {e}")
                    conn = None
                    time.sleep(0.1)
                    continue
            with self.lock:
                i = next(self._ids)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {self.table} (id) VALUES (%s)", (i,))
                t = time.monotonic()
                with self.lock:
                    self.acked[i] = (t, name)
                    self.ack_times.append(t)
            except Exception as e:  # noqa: BLE001 - lost connection, read-only, killed...
                self._error(f"{name} id {i}: {e}")
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            # follow the cluster: when it names another primary, go there
            now_primary = self.watch.writable_primary()
            if conn is not None and now_primary is not None and now_primary != name:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            time.sleep(self.pace)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _error(self, text):
        with self.lock:
            self.n_errors += 1
            self.errors.append(text)

    def start(self):
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_acks(self, n, timeout=30):
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count() >= target

    def missing_on(self, sb, n):
        """Acknowledged ids that node n does not have, with their ack time and acking node."""
        with self.lock:  # what was acknowledged before the query: it must all be there
            acked = dict(self.acked)
        c = root_conn(sb, n, timeout=5)
        try:
            with c.cursor() as cur:
                cur.execute(f"SELECT id FROM {self.table}")
                have = {int(r[0]) for r in cur.fetchall()}
        finally:
            c.close()
        return sorted((i, t, name) for i, (t, name) in acked.items() if i not in have)

    def longest_gap(self, t0, t1):
        with self.lock:
            times = self.ack_times
            a = bisect.bisect_left(times, t0)
            b = bisect.bisect_right(times, t1)
            inside = times[a:b]
        pts = [t0] + inside + [t1]
        return max((y - x for x, y in zip(pts, pts[1:])), default=t1 - t0)


# ---------------------------------------------------------------------------------------------
# The engine

class ClassStats:
    def __init__(self):
        self.faults = 0
        self.failovers = 0
        self.lost = 0
        self.double = 0
        self.double_resume = 0
        self.max_gap = 0.0
        self.max_write_gap = 0.0
        self.max_heal = 0.0
        self.diverged = 0
        self.violations = 0
        self.extra = {}


class Nemesis:
    def __init__(self, sb, net, seed, writers=4, log=None):
        self.sb = sb
        self.net = net
        self.seed = seed
        self.t0 = time.monotonic()
        self._log = log or (lambda text: print(text, flush=True))
        self.violations = []
        self.notes = []
        self.stats = {k: ClassStats() for k in KINDS}
        self.sampler = Sampler(sb)
        self.watch = StatusWatcher(sb)
        self.writer = MultiWriter(sb, self.watch, threads=writers)
        self.aborted = None
        self.done = []
        self.skipped = []
        self.expected_down = set()     # ("db"|"agent", n) killed by us, not restarted yet
        self.stopped = set()           # pids we SIGSTOPped and not yet resumed
        self.broken_creds = None       # node whose agent password we changed
        self.held = None               # (node, admin conn, app conns, max_connections)
        self.delayed = set()           # replicas given a MASTER_DELAY
        self.lost_seen = set()
        self.doubles_seen = 0
        self.ddl_repeat = None
        self.final_primary = None
        self.started = False
        with open(os.path.join(sb.dir, "haagent.password")) as f:
            self.haagent_password = f.read().strip()

    # ---- reporting ----
    def log(self, text):
        self._log(f"[nemesis seed {self.seed} +{time.monotonic() - self.t0:6.1f}s] {text}")

    def violation(self, fault, what):
        where = fault.describe() if fault is not None else "final check"
        msg = f"seed {self.seed}: {where}: {what}"
        self.violations.append(msg)
        if fault is not None:
            self.stats[fault.kind].violations += 1
        self.log("VIOLATION " + msg)

    def note(self, text):
        self.notes.append(text)
        self.log("note: " + text)

    # ---- lifecycle ----
    def start(self):
        self.log(f"starting (replay with HA_NEMESIS_SEED={self.seed}); sandbox {self.sb.dir}")
        self.watch.start()
        s = self.watch.fresh(60)
        if not s.get("primary"):
            raise Abort(f"no primary at start: {s.get('note')}")
        self.sampler.start()
        self.writer.setup()
        self.writer.start()
        if not self.writer.wait_acks(50, 30):
            raise Abort(f"the writers do not get acknowledgements: {list(self.writer.errors)[-5:]}")
        self._prepare_big_table(s)  # calibrated under the writers' load
        self.started = True
        self.log(f"{self.writer.nthreads} writers running; primary {s['primary']}, "
                 f"leader {s.get('leader')}, epoch {s['epoch']}")

    def run(self, faults, budget_s=None):
        for i, f in enumerate(faults):
            if self.aborted:
                self.skipped += faults[i:]
                break
            if budget_s is not None and time.monotonic() - self.t0 > budget_s:
                self.skipped += faults[i:]
                self.log(f"time budget of {budget_s:.0f} s used: skipping "
                         + ", ".join(x.describe() for x in faults[i:]))
                break
            try:
                self.run_fault(f)
            except Abort as e:
                self.aborted = f"during {f.describe()}: {e}"
                self.violation(f, f"the cluster stopped answering: {e}")
                try:
                    self._heal_all()
                except Exception as e2:  # noqa: BLE001
                    self.note(f"heal after the abort failed: {e2!r}")

    def finish(self):
        """Heals everything, stops the writers, waits for a whole cluster and checks every
        acknowledged write on the final primary. Stops the observers."""
        try:
            self._heal_all()
            self.writer.stop()
            if self.started:
                try:
                    s = self._wait_whole(None, WHOLE_BOUND_S)
                    p = node_no(s["primary"])
                    self._wait_caught_up(p, CATCHUP_BOUND_S)
                    self.final_primary = s["primary"]
                    missing = self.writer.missing_on(self.sb, p)
                    if missing:
                        again = sum(1 for m in missing if m[0] in self.lost_seen)
                        self.violation(None, f"{len(missing)} acknowledged writes missing on the "
                                       f"final primary {s['primary']} ({again} of them already "
                                       "reported after their fault): " + self._fmt_missing(missing))
                    self.log(f"final primary {s['primary']}: {self.writer.count()} acknowledged "
                             f"writes checked, {len(missing)} missing")
                except Abort as e:
                    self.violation(None, f"the cluster did not settle at the end: {e}")
                    self._final_check_best_effort()
            self._collect_doubles(None)
        finally:
            self.sampler.stop()
            self.watch.stop()

    def _final_check_best_effort(self):
        """No whole cluster: check the acknowledged writes on whichever node is writable."""
        w = self.sampler.writable_since(time.monotonic() - 2) or []
        if len(w) == 1:
            missing = self.writer.missing_on(self.sb, w[0])
            if missing:
                again = sum(1 for m in missing if m[0] in self.lost_seen)
                self.violation(None, f"{len(missing)} acknowledged writes missing on node{w[0]}, "
                               f"the only writable node ({again} of them already reported after "
                               "their fault): " + self._fmt_missing(missing))
        else:
            self.violation(None, f"no final primary to check the acknowledged writes on "
                           f"(writable: {w})")

    # ---- one fault ----
    def run_fault(self, f):
        st = self.stats[f.kind]
        try:
            s0 = self._wait_whole(f, WHOLE_BOUND_S, before=True)
            self._wait_caught_up(node_no(s0["primary"]), CATCHUP_BOUND_S)
            s0 = self.watch.fresh(20)
        except Abort as e:
            self.aborted = f"before {f.describe()}: {e}"
            self.violation(f, f"the cluster was not whole before the fault: {e}")
            self.skipped.append(f)
            return
        roles = self._roles(s0)
        epoch0 = s0["epoch"]
        st.faults += 1
        self.sampler.label = f.kind
        t_inject = time.monotonic()
        self.log(f"inject {f.describe()} -- primary node{roles['primary']}, leader "
                 f"{('node%d' % roles['leader']) if roles['leader'] else '?'}, epoch {epoch0}, "
                 f"{self.writer.count()} acked so far")
        try:
            getattr(self, "_fault_" + f.kind.replace("-", "_"))(f, roles)
        except Abort:
            raise
        except Exception as e:  # noqa: BLE001 - the injection itself failed: heal, go on
            self.note(f"{f.describe()}: injection error: {e!r}\n{traceback.format_exc()}")
        try:
            self._heal_all()
        except Exception as e:  # noqa: BLE001
            self.note(f"{f.describe()}: heal error: {e!r}")
        t_heal = time.monotonic()
        self.log(f"healed {f.describe()} after {t_heal - t_inject:.1f} s")

        took = self._wait_writable(HEAL_BOUND_S, t_heal)
        if took is None:
            self.violation(f, f"no writable primary within {HEAL_BOUND_S:.0f} s after the heal "
                           f"(status: {self._status_brief()})")
            self.aborted = f"no writable primary after {f.describe()}"
        else:
            st.max_heal = max(st.max_heal, took)

        if f.kind == "bad-credentials":
            self._check_stayed_writable(f, roles["primary"], t_inject, t_heal + 2.0)

        if not self.aborted:
            try:
                s1 = self._wait_whole(f, WHOLE_BOUND_S)
                self._wait_caught_up(node_no(s1["primary"]), CATCHUP_BOUND_S)
                s1 = self.watch.fresh(20)
            except Abort as e:
                self.violation(f, f"the cluster did not become whole again within "
                               f"{WHOLE_BOUND_S:.0f} s after the heal: {e}")
                self.aborted = f"cluster not whole after {f.describe()}"
                s1 = self.watch.get()[0] or s0
        else:
            s1 = self.watch.get()[0] or s0
        t_end = time.monotonic()

        failovers = max(0, (s1.get("epoch") or epoch0) - epoch0)
        st.failovers += failovers
        if failovers and f.expect_no_failover():
            fo = s1.get("failover") or {}
            self.violation(f, f"caused {failovers} failover(s) (epoch {epoch0} -> {s1.get('epoch')}; "
                           f"last: {fo.get('old_primary')} -> {fo.get('new_primary')}, reason: "
                           f"{fo.get('reason')!r}, fenced_by: {fo.get('fenced_by')!r})")

        # acknowledged writes on the current primary
        if s1.get("primary"):
            p = node_no(s1["primary"])
            try:
                missing = self.writer.missing_on(self.sb, p)
                new = [m for m in missing if m[0] not in self.lost_seen]
                if new:
                    self.lost_seen.update(m[0] for m in new)
                    st.lost += len(new)
                    fo = s1.get("failover") or {}
                    self.violation(f, f"{len(new)} acknowledged writes missing on the primary "
                                   f"{s1['primary']}: {self._fmt_missing(new)}; last failover: "
                                   f"{fo.get('old_primary')} -> {fo.get('new_primary')} "
                                   f"({fo.get('detail')!r}, lost_count {fo.get('lost_count')})")
            except Exception as e:  # noqa: BLE001
                self.note(f"{f.describe()}: could not check the acknowledged writes: {e!r}")

        self._collect_doubles(f)
        gap = self.sampler.longest_gap(t_inject, t_end)
        wgap = self.writer.longest_gap(t_inject, t_end)
        st.max_gap = max(st.max_gap, gap)
        st.max_write_gap = max(st.max_write_gap, wgap)
        self.done.append(f)
        self.log(f"done {f.describe()}: {failovers} failover(s), heal->writable "
                 f"{'-' if took is None else '%.1f s' % took}, longest without a writable node "
                 f"{gap:.1f} s, longest write gap {wgap:.1f} s, {t_end - t_inject:.0f} s in all")

    # ---- the faults ----
    def _roles(self, s):
        primary = node_no(s["primary"])
        leader = node_no(s["leader"]) if s.get("leader") and s.get("authoritative") else None
        replicas = sorted(n for n in (1, 2, 3) if n != primary)
        return {"primary": primary, "leader": leader, "replicas": replicas}

    def _target(self, f, roles):
        if f.target == "primary":
            return roles["primary"]
        if f.target == "replica":
            return roles["replicas"][f.pick]
        if f.target == "leader":
            if roles["leader"] is None:
                s = self.watch.fresh(20)
                roles["leader"] = node_no(s["leader"]) if s.get("leader") else roles["primary"]
            return roles["leader"]
        raise ValueError(f.target)

    def _role_names(self, n, roles):
        r = []
        if n == roles["primary"]:
            r.append("primary")
        else:
            r.append("replica")
        if n == roles["leader"]:
            r.append("leader")
        return f"node{n} ({'+'.join(r)})"

    def _kill(self, what, n):
        pid = self.sb.db_pid(n) if what == "db" else self.sb.agent_pid(n)
        if pid is None:
            raise RuntimeError(f"node{n}'s {what} is not running")
        os.kill(pid, signal.SIGKILL)
        self.expected_down.add((what, n))
        return pid

    def _fault_kill_db(self, f, roles):
        n = self._target(f, roles)
        f.resolved = "mariadbd of " + self._role_names(n, roles)
        self._kill("db", n)
        time.sleep(f.hold)
        self._restart_missing(f)

    def _fault_kill_agent(self, f, roles):
        n = self._target(f, roles)
        f.resolved = "agent of " + self._role_names(n, roles)
        self._kill("agent", n)
        time.sleep(f.hold)
        self._restart_missing(f)

    def _stop_cont(self, f, what, n):
        pid = self.sb.db_pid(n) if what == "db" else self.sb.agent_pid(n)
        if pid is None:
            raise RuntimeError(f"node{n}'s {what} is not running")
        os.kill(pid, signal.SIGSTOP)
        self.stopped.add((what, n, pid))
        try:
            time.sleep(f.hold)
        finally:
            self._resume(what, n, pid)

    def _resume(self, what, n, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        if what == "db":
            self.sampler.note_resume(n)
        self.stopped.discard((what, n, pid))

    def _fault_stop_db(self, f, roles):
        n = self._target(f, roles)
        f.resolved = "mariadbd of " + self._role_names(n, roles)
        self._stop_cont(f, "db", n)

    def _fault_stop_agent(self, f, roles):
        n = self._target(f, roles)
        f.resolved = "agent of " + self._role_names(n, roles)
        self._stop_cont(f, "agent", n)

    def _fault_partition(self, f, roles):
        if self.net is None:
            f.resolved = "skipped: no NetFaults"
            return
        p, r = roles["primary"], roles["replicas"]
        if f.variant == "isolate-primary":
            f.resolved = "isolate " + self._role_names(p, roles)
            self.net.isolate(p)
        elif f.variant == "isolate-leader":
            n = self._target(Fault(0, "", "leader"), roles)
            f.resolved = "isolate " + self._role_names(n, roles)
            self.net.isolate(n)
        elif f.variant == "isolate-replica":
            n = r[f.pick]
            f.resolved = "isolate " + self._role_names(n, roles)
            self.net.isolate(n)
        elif f.variant in ("primary-deaf", "primary-mute"):
            # asymmetric: a deaf primary sends but hears nothing; a mute one hears but its
            # packets reach nobody
            for o in r:
                if f.variant == "primary-deaf":
                    self.net.cut_oneway(o, p)
                else:
                    self.net.cut_oneway(p, o)
            f.resolved = f"{self._role_names(p, roles)} {f.variant.split('-')[1]}"
        elif f.variant == "cut-primary-replica":
            f.resolved = f"cut {self._role_names(p, roles)} <-> {self._role_names(r[f.pick], roles)}"
            self.net.cut(p, r[f.pick])
        else:
            f.resolved = f"cut {self._role_names(r[0], roles)} <-> {self._role_names(r[1], roles)}"
            self.net.cut(r[0], r[1])
        time.sleep(f.hold)
        dropped = self.net.dropped()
        self.net.heal()
        if dropped == 0:
            self.note(f"{f.describe()}: the partition dropped no packet")

    def _fault_packet_loss(self, f, roles):
        if self.net is None:
            f.resolved = "skipped: no NetFaults"
            return
        p, r = roles["primary"], roles["replicas"]
        if f.variant == "primary-links":
            pairs = [(p, r[0]), (p, r[1])]
        elif f.variant == "primary-replica":
            pairs = [(p, r[f.pick])]
        else:
            n = self._target(Fault(0, "", "leader"), roles)
            pairs = [(n, o) for o in (1, 2, 3) if o != n]
        for a, b in pairs:
            self.net.lossy(a, b, f.param)
        f.resolved = ", ".join(f"{self._role_names(a, roles)} <-> {self._role_names(b, roles)}"
                               for a, b in pairs)
        time.sleep(f.hold)
        dropped = self.net.dropped()
        self.net.heal()
        if dropped == 0:
            self.note(f"{f.describe()}: the packet loss dropped no packet")

    def _haagent_hosts(self, cur):
        cur.execute("SELECT Host FROM mysql.user WHERE User='haagent'")
        return [r[0] for r in cur.fetchall()]

    def _set_haagent_password(self, n, password):
        c = root_conn(self.sb, n)
        try:
            with c.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin=0")
                for host in self._haagent_hosts(cur):
                    cur.execute("ALTER USER 'haagent'@%s IDENTIFIED BY %s", (host, password))
        finally:
            c.close()

    def _fault_bad_credentials(self, f, roles):
        p = roles["primary"]
        f.resolved = "agent password on " + self._role_names(p, roles)
        self.broken_creds = p
        self._set_haagent_password(p, f"nemesis-wrong-{self.seed}-{f.index}")
        c = root_conn(self.sb, p)
        killed = 0
        try:
            with c.cursor() as cur:
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER='haagent'")
                for (pid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL CONNECTION {int(pid)}")
                        killed += 1
                    except pymysql.err.MySQLError:
                        pass
        finally:
            c.close()
        self.log(f"{f.describe()}: password changed, {killed} agent session(s) killed")
        time.sleep(f.hold)
        self._set_haagent_password(p, self.haagent_password)
        self.broken_creds = None

    def _fault_max_connections(self, f, roles):
        p = roles["primary"]
        f.resolved = "max_connections on " + self._role_names(p, roles)
        admin = root_conn(self.sb, p)
        with admin.cursor() as cur:
            cur.execute("SELECT @@global.max_connections")
            orig = int(cur.fetchone()[0])
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            connected = int(cur.fetchone()[1])
            cur.execute(f"SET GLOBAL max_connections = {connected + 2}")
        conns = []
        self.held = (p, admin, conns, orig)
        refused = None
        for _ in range(100):
            try:
                conns.append(pymysql.connect(host=self.sb.ip(p), port=3306, user="app",
                                             password="app", connect_timeout=2))
            except pymysql.err.OperationalError as e:
                refused = e
                break
        self.log(f"{f.describe()}: max_connections {orig} -> {connected + 2}, {len(conns)} app "
                 f"connections held, then refused: {refused}")
        if refused is None or refused.args[0] != 1040:
            self.note(f"{f.describe()}: not refused with 'Too many connections' ({refused!r})")
        time.sleep(f.hold)
        self._release_connections()

    def _release_connections(self):
        if self.held is None:
            return
        p, admin, conns, orig = self.held
        for c in conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            with admin.cursor() as cur:
                cur.execute(f"SET GLOBAL max_connections = {orig}")
            admin.close()
        except Exception:  # noqa: BLE001 - the admin session died: a new one
            c = root_conn(self.sb, p)
            with c.cursor() as cur:
                cur.execute(f"SET GLOBAL max_connections = {orig}")
            c.close()
        self.held = None

    def _prepare_big_table(self, s):
        """sandbox.big on every node, outside the binary log (identical content everywhere), and
        a calibrated per-row cost so that rebuilding it takes about DDL_TARGET_S."""
        t = time.monotonic()
        for n in (1, 2, 3):
            c = root_conn(self.sb, n)
            try:
                with c.cursor() as cur:
                    cur.execute("SET SESSION sql_log_bin=0")
                    cur.execute("CREATE TABLE IF NOT EXISTS sandbox.big (id INT PRIMARY KEY, "
                                "a VARCHAR(40) NOT NULL) ENGINE=InnoDB")
                    cur.execute("SELECT COUNT(*) FROM sandbox.big")
                    if int(cur.fetchone()[0]) == 0:
                        cur.execute("INSERT INTO sandbox.big SELECT seq, SHA1(seq) FROM "
                                    f"sandbox.seq_1_to_{BIG_ROWS}")
            finally:
                c.close()
        built = time.monotonic() - t
        p = node_no(s["primary"])
        c = root_conn(self.sb, p)
        try:
            with c.cursor() as cur:
                unit, rows = 200, 20000
                t = time.monotonic()
                cur.execute(f"SELECT SUM(CRC32(SHA2(REPEAT(a, {unit}), 512))) FROM sandbox.big "
                            f"WHERE id <= {rows}")
                cur.fetchall()
                per = (time.monotonic() - t) / (rows * unit)
        finally:
            c.close()
        self.ddl_repeat = int(min(20000, max(20, DDL_TARGET_S / (BIG_ROWS * per))))
        self.log(f"sandbox.big: {BIG_ROWS} rows on each node in {built:.1f} s; the long DDL "
                 f"hashes REPEAT(a, {self.ddl_repeat}) per row (~{DDL_TARGET_S:.0f} s)")

    def _fault_long_ddl(self, f, roles):
        p = roles["primary"]
        f.resolved = "on " + self._role_names(p, roles)
        c = root_conn(self.sb, p)
        with c.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                        "TABLE_SCHEMA='sandbox' AND TABLE_NAME='big' AND COLUMN_NAME LIKE 'h%'")
            old = [r[0] for r in cur.fetchall()]
        c.close()
        drops = "".join(f"DROP COLUMN {col}, " for col in old)
        sql = (f"ALTER TABLE sandbox.big {drops}ADD COLUMN h{f.index} CHAR(128) AS "
               f"(SHA2(REPEAT(a, {self.ddl_repeat}), 512)) STORED, ALGORITHM=COPY")
        out = {}

        def ddl():
            t = time.monotonic()
            try:
                conn = pymysql.connect(host=self.sb.ip(p), port=3306, user="app", password="app",
                                       connect_timeout=3, read_timeout=DDL_TARGET_S * 8,
                                       autocommit=True)
                with conn.cursor() as cur:
                    cur.execute(sql)
                conn.close()
                out["took"] = time.monotonic() - t
            except Exception as e:  # noqa: BLE001
                out["error"] = repr(e)
                out["took"] = time.monotonic() - t
        th = threading.Thread(target=ddl, daemon=True)
        th.start()
        th.join(DDL_TARGET_S * 8)
        if th.is_alive() or "error" in out:
            self.note(f"{f.describe()}: the DDL did not complete: {out}")
            return
        acked_at_ddl = self.writer.count()
        self.log(f"{f.describe()}: DDL done on node{p} in {out['took']:.1f} s; the replicas "
                 "apply it now")
        if f.variant == "kill-primary":
            time.sleep(f.param)
            self._kill("db", p)
            self.log(f"{f.describe()}: killed node{p}'s mariadbd, "
                     f"{self.writer.count() - acked_at_ddl} writes acknowledged since the DDL")
            time.sleep(f.hold)
            self._restart_missing(f)
        else:
            time.sleep(f.hold)

    def _slave_delay(self, n):
        c = root_conn(self.sb, n)
        try:
            with c.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute("SHOW SLAVE STATUS")
                row = cur.fetchone()
            return None if row is None else int(row.get("SQL_Delay") or 0)
        finally:
            c.close()

    def _fault_slow_sql(self, f, roles):
        n = roles["replicas"][f.pick]
        p = roles["primary"]
        f.resolved = "replica " + self._role_names(n, roles) + (
            f", then kill mariadbd of node{p}" if f.variant == "kill-primary" else "")
        self.delayed.add(n)
        self.sb.sql(n, f"STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={int(f.param)}; START SLAVE")
        if f.variant == "kill-primary":
            time.sleep(f.param2)
            self._kill("db", p)
            time.sleep(f.hold)
            self._restart_missing(f)
        else:
            time.sleep(f.hold)
        self._undelay()

    def _undelay(self):
        # A candidate that is promoting waits out its MASTER_DELAY (docs/failover.md): changing
        # the delay needs CHANGE MASTER, which discards its relay log, acknowledged writes and
        # all. An operator must not do that, and neither does the nemesis: it waits (bounded).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s, _ = self.watch.get()
            fo = (s or {}).get("failover") or {}
            busy = fo.get("phase") == "promoting" and \
                any(fo.get("new_primary") == f"node{n}" for n in self.delayed)
            if not busy:
                break
            time.sleep(0.2)
        for n in sorted(self.delayed):
            try:
                d = self._slave_delay(n)
                if d:
                    self.sb.sql(n, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
                self.delayed.discard(n)
            except Exception as e:  # noqa: BLE001 - its database is down: later
                self.log(f"MASTER_DELAY on node{n} not reset yet: {e}")

    def _fault_mid_promotion(self, f, roles):
        p = roles["primary"]
        s0, _ = self.watch.get()
        fid0 = ((s0 or {}).get("failover") or {}).get("id") or 0
        found = {}
        lock = threading.Lock()
        done = threading.Event()
        deadline = time.monotonic() + 30

        def poller(k):
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    r = self.sb.haadm("-t", "500", "status", "--json", conf_node=k, timeout=5)
                    fo = json.loads(r.stdout).get("failover") or {}
                except Exception:  # noqa: BLE001
                    time.sleep(0.005)
                    continue
                if (fo.get("id") or 0) > fid0 and fo.get("new_primary") and \
                        fo.get("phase") in ("promoting", "done"):
                    with lock:
                        if not found:
                            found.update(phase=fo["phase"], cand=fo["new_primary"],
                                         t=time.monotonic())
                    done.set()
        others = roles["replicas"]
        pollers = [threading.Thread(target=poller, args=(k,), daemon=True)
                   for k in (others[0], others[1], others[0])]
        for t in pollers:
            t.start()
        self._kill("db", p)
        t_kill = time.monotonic()
        cand = None
        if done.wait(30) and found:
            cand = node_no(found["cand"])
            try:
                self._kill("db", cand)
                f.resolved = (f"primary node{p} killed, candidate node{cand} killed in phase "
                              f"{found['phase']} {found['t'] - t_kill:.2f} s later")
                self.stats[f.kind].extra[found["phase"]] = \
                    self.stats[f.kind].extra.get(found["phase"], 0) + 1
            except RuntimeError as e:
                f.resolved = f"primary node{p} killed; candidate node{cand}: {e}"
        else:
            f.resolved = f"primary node{p} killed; no promotion seen within 30 s"
            self.note(f"{f.describe()}: no failover promoting a candidate seen within 30 s")
        done.set()
        for t in pollers:
            t.join(10)
        self.log(f"{f.describe()}")
        time.sleep(f.hold)
        self._restart_missing(f)

    # ---- healing and waiting ----
    def _heal_all(self):
        if self.net is not None:
            self.net.heal()
        for what, n, pid in list(self.stopped):
            self._resume(what, n, pid)
        if self.broken_creds is not None:
            try:
                self._set_haagent_password(self.broken_creds, self.haagent_password)
                self.broken_creds = None
            except Exception as e:  # noqa: BLE001
                self.log(f"could not restore the agent's password on node{self.broken_creds}: {e}")
        try:
            self._release_connections()
        except Exception as e:  # noqa: BLE001
            self.log(f"could not restore max_connections: {e}")
        self._restart_missing(None)
        if self.delayed:
            self._undelay()

    def _restart_missing(self, f):
        for n in (1, 2, 3):
            if self.sb.db_pid(n) is None:
                if ("db", n) not in self.expected_down:
                    self.note(f"node{n}'s mariadbd was not running (not killed by the nemesis)"
                              + (f" during {f.describe()}" if f else ""))
                try:
                    self.sb.run_sandbox("start-db", str(n), timeout=120)
                except Exception as e:  # noqa: BLE001
                    self.note(f"start-db {n} failed: {e}")
            self.expected_down.discard(("db", n))
            if self._agent_gone(n):
                if ("agent", n) not in self.expected_down:
                    self.violation(f, f"node{n}'s agent died without being killed by the nemesis"
                                   f" (agent.log: {self._agent_tail(n)})")
                try:
                    self.sb.run_sandbox("start-agent", str(n), timeout=60)
                except Exception as e:  # noqa: BLE001
                    self.note(f"start-agent {n} failed: {e}")
            self.expected_down.discard(("agent", n))

    def _agent_gone(self, n):
        """No live agent on node n, asked for up to 1 s: an agent the sandbox has just
        launched is a shell until it execs haagentd (found by CI: the check after a restart
        ran in that instant and called the agent dead)."""
        deadline = time.monotonic() + 1.0
        while self.sb.agent_pid(n) is None:
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        return False

    def _agent_tail(self, n, lines=8):
        try:
            with open(os.path.join(self.sb.node_dir(n), "agent.log"), errors="replace") as fh:
                return " | ".join(x.rstrip() for x in fh.readlines()[-lines:])
        except OSError:
            return "-"

    def _wait_writable(self, bound, since):
        """Seconds from `since` until the primary `haadm status` names answers read_only=0,
        or None after `bound`."""
        deadline = since + bound
        while time.monotonic() < deadline:
            w = self.sampler.writable_since(since)
            s, st = self.watch.get()
            if w and s and st >= since and s.get("primary") and node_no(s["primary"]) in w:
                return time.monotonic() - since
            time.sleep(0.05)
        return None

    def _whole(self, s):
        if not s.get("primary"):
            return False
        for x in s["nodes"]:
            if x["db"] != "up" or x["agent"] != "reachable":
                return False
            if x["name"] == s["primary"]:
                if x["read_only"] is not False:
                    return False
            elif not (x["role"] == "replica" and x["io_running"] and x["sql_running"]):
                return False
        return True

    def _wait_whole(self, f, bound, before=False):
        deadline = time.monotonic() + bound
        last = None
        recloned = set()
        while time.monotonic() < deadline:
            self._restart_missing(None if before else f)
            try:
                s = self.watch.fresh(10)
            except Abort as e:
                last = str(e)
                continue
            last = self._status_brief(s)
            if s.get("authoritative") and self._whole(s):
                return s
            for x in s["nodes"]:
                if x["role"] == "diverged" and x["name"] not in recloned and s.get("primary") \
                        and x["name"] != s["primary"]:
                    recloned.add(x["name"])
                    if f is not None and not before:
                        self.stats[f.kind].diverged += 1
                    self._reclone(f, x, s)
                    deadline = max(deadline, time.monotonic() + 60)
            time.sleep(0.5)
        raise Abort(f"not whole within {bound:.0f} s: {last}")

    def _rejoined_by_itself(self, name, bound=90):
        """rejoin = auto (the default): the node's agent saves its unacknowledged tail and
        re-clones it by itself. True once it is no longer diverged; False when its agent holds
        it diverged (the tail may hold acknowledged writes: an operator's call) or after bound."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            try:
                s = self.watch.fresh(10)
            except Abort:
                continue
            x = next((y for y in s["nodes"] if y["name"] == name), None)
            if x is None or x["role"] != "diverged":
                return True
            if (x.get("rejoin") or "").startswith("diverged"):
                return False  # held: its status says why
            time.sleep(0.5)
        return False

    def _reclone(self, f, x, s):
        """A diverged node (it held writes nobody acknowledged) rejoins by itself (rejoin =
        auto); one its agent holds diverged is brought back as an operator would: a fresh
        backup, then `haadm node reclone`."""
        n = node_no(x["name"])
        t = time.monotonic()
        if self._rejoined_by_itself(x["name"]):
            self.log(f"{x['name']} diverged (errant {x.get('errant_gtid')}) after "
                     f"{f.describe() if f else 'the schedule'} and rejoined by itself in "
                     f"{time.monotonic() - t:.1f} s")
            return
        self.log(f"{x['name']} diverged (errant {x.get('errant_gtid')}) after "
                 f"{f.describe() if f else 'the schedule'}: re-cloning it from a fresh backup")
        p = node_no(s["primary"])
        for attempt in range(4):
            r = self.sb.haadm("backup", "run", "--wait", conf_node=p, timeout=600)
            if r.returncode == 0:
                break
            self.log(f"backup attempt {attempt + 1} failed: {r.stdout[-300:]} {r.stderr[-300:]}")
            if "allow_primary = no" in r.stdout + r.stderr:
                # every replica is diverged (after a loss): only the primary can be backed up
                self._allow_backup_on_primary()
            time.sleep(3)
        else:
            raise Abort(f"no backup to re-clone {x['name']} from")
        r = subprocess.run([HAADM, "-c", self.sb.conf(n), "node", "reclone", x["name"]],
                           env=self.sb.env, capture_output=True, text=True, timeout=900)
        if r.returncode == 16 and "another re-clone" in r.stdout + r.stderr:
            self.log(f"{x['name']}: its agent is re-cloning it already")
            return
        if r.returncode != 0:
            raise Abort(f"haadm node reclone {x['name']} failed ({r.returncode}): "
                        f"{r.stdout[-500:]} {r.stderr[-500:]}")
        self.log(f"{x['name']} re-cloned in {time.monotonic() - t:.1f} s")

    def _allow_backup_on_primary(self):
        """[backup] allow_primary = yes in every agent's configuration, one agent restarted at a
        time (the raft majority stays)."""
        self.log("no replica fit for a backup: restarting the agents one by one with "
                 "[backup] allow_primary = yes")
        for n in (1, 2, 3):
            conf = self.sb.conf(n)
            with open(conf) as fh:
                text = fh.read()
            if "allow_primary = yes" not in text:
                with open(conf, "a") as fh:
                    fh.write("\n# nemesis: re-clones need a backup when every replica is diverged"
                             "\n[backup]\nallow_primary = yes\n")
            pid = self.sb.agent_pid(n)
            if pid:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while self.sb.agent_pid(n) is not None and time.monotonic() < deadline:
                    time.sleep(0.1)
            self.sb.run_sandbox("start-agent", str(n), timeout=60)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                s = self.watch.poll()
                if s and s.get("authoritative") and all(
                        x["agent"] == "reachable" for x in s["nodes"]):
                    break
                time.sleep(0.3)

    def _wait_caught_up(self, p, bound):
        """Every replica has applied what the primary had when this was called."""
        try:
            target = gtid_seq(self.sb.sql(p, "SELECT @@global.gtid_binlog_pos"))
        except Exception as e:  # noqa: BLE001
            raise Abort(f"the primary node{p} does not answer: {e}") from None
        deadline = time.monotonic() + bound
        behind = {}
        while time.monotonic() < deadline:
            behind = {}
            for n in (1, 2, 3):
                if n == p:
                    continue
                try:
                    have = gtid_seq(self.sb.sql(n, "SELECT @@global.gtid_slave_pos", timeout=10))
                except Exception:  # noqa: BLE001
                    have = -1
                if have < target:
                    behind[n] = have
            if not behind:
                return
            time.sleep(0.3)
        raise Abort(f"replicas not caught up with node{p} (seq {target}) within {bound:.0f} s: "
                    f"{behind}")

    def _status_brief(self, s=None):
        if s is None:
            s = self.watch.get()[0]
        if not s:
            return "no status"
        fo = s.get("failover") or {}
        parts = [f"primary {s.get('primary')} epoch {s.get('epoch')} leader {s.get('leader')}"]
        if fo:
            parts.append(f"failover #{fo.get('id')} {fo.get('phase')} {fo.get('old_primary')}->"
                         f"{fo.get('new_primary')}")
        for x in s.get("nodes", []):
            parts.append(f"{x['name']}:{x['role']}/{x['db']}/ro={x['read_only']}/"
                         f"io={x['io_running']}/agent={x['agent']}")
        return "; ".join(parts)

    # ---- invariants ----
    def _check_stayed_writable(self, f, p, t0, t1):
        ro = [r for r in self.sampler.rounds_between(t0, t1) if r[1][p - 1] == 1]
        if ro:
            self.violation(f, f"the primary node{p} turned read-only during the fault "
                           f"({len(ro)} samples from +{ro[0][0] - self.t0:.1f}s to "
                           f"+{ro[-1][0] - self.t0:.1f}s): its database was up all along")

    def _collect_doubles(self, f):
        with self.sampler.lock:
            new = self.sampler.doubles[self.doubles_seen:]
            self.doubles_seen = len(self.sampler.doubles)
        if not new:
            return
        st = self.stats[f.kind] if f is not None else None
        strict = [d for d in new if d["overlap"] and not d["resumed"]]
        resumed = [d for d in new if d["overlap"] and d["resumed"]]
        loose = [d for d in new if not d["overlap"]]
        if st is not None:
            st.double += len(strict)
            st.double_resume += len(resumed)
        if strict:
            pairs = sorted({"+".join(f"node{n}" for n in d["nodes"]) for d in strict})
            self.violation(f, f"{len(strict)} double-writable samples ({', '.join(pairs)} answered "
                           f"read_only=0 at once) from +{strict[0]['t'] - self.t0:.1f}s to "
                           f"+{strict[-1]['t'] - self.t0:.1f}s")
        if resumed:
            self.log(f"{len(resumed)} double-writable samples within {RESUME_GRACE_S:.0f} s of a "
                     f"SIGCONT of node{resumed[0]['resumed']}'s mariadbd (not counted as violations)")
        if loose:
            self.log(f"{len(loose)} samples with two writable answers whose query windows did not "
                     "overlap (not counted)")

    def _fmt_missing(self, missing):
        by = {}
        for i, t, name in missing:
            by.setdefault(name, []).append(i)
        parts = []
        for name, ids in sorted(by.items()):
            parts.append(f"{len(ids)} acked by {name} (ids {ids[:8]}{'...' if len(ids) > 8 else ''}"
                         f", acked +{min(t for i, t, nm in missing if nm == name) - self.t0:.1f}s.."
                         f"+{max(t for i, t, nm in missing if nm == name) - self.t0:.1f}s)")
        return "; ".join(parts)

    def report(self):
        el = time.monotonic() - self.t0
        rounds = len(self.sampler.rounds)
        lines = [f"nemesis seed {self.seed} (replay: HA_NEMESIS_SEED={self.seed}): "
                 f"{len(self.done)} faults in {el:.0f} s, {self.writer.count()} acknowledged writes "
                 f"by {self.writer.nthreads} writers ({self.writer.n_errors} failed attempts), "
                 f"{rounds} read_only sampling rounds ({rounds / max(el, 1):.1f}/s), final primary "
                 f"{self.final_primary}"]
        hdr = (f"{'fault class':16s} {'faults':>6s} {'failovers':>9s} {'lost acked':>10s} "
               f"{'2x writable':>11s} {'(resume)':>8s} {'no writable s':>13s} {'write gap s':>11s} "
               f"{'heal->rw s':>10s} {'diverged':>8s} {'violations':>10s}")
        lines.append(hdr)
        for k in KINDS:
            s = self.stats[k]
            if not s.faults:
                continue
            lines.append(f"{k:16s} {s.faults:6d} {s.failovers:9d} {s.lost:10d} {s.double:11d} "
                         f"{s.double_resume:8d} {s.max_gap:13.1f} {s.max_write_gap:11.1f} "
                         f"{s.max_heal:10.1f} {s.diverged:8d} {s.violations:10d}"
                         + (f"  {s.extra}" if s.extra else ""))
        if self.skipped:
            lines.append("not run: " + ", ".join(f.describe() for f in self.skipped))
        if self.notes:
            lines.append(f"{len(self.notes)} note(s) (not violations):")
            lines += ["  " + n.splitlines()[0][:300] for n in self.notes]
        if self.aborted:
            lines.append(f"schedule aborted: {self.aborted}")
        if self.violations:
            lines.append(f"{len(self.violations)} invariant violation(s):")
            lines += ["  " + v for v in self.violations]
        else:
            lines.append("no invariant violation")
        return "\n".join(lines)
