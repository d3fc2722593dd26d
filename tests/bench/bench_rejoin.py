#!/usr/bin/env python3
"""Rejoin benchmark: the time from a diverged old primary's wake-up to replicating again.

Each run (BENCH_RUNS, default 3) is test_rejoin's first scenario: a writer on the primary, the
replicas' streams held until a commit waits for its acknowledgement, the primary's host frozen
(SIGSTOP of its mariadbd and agent) through the failover, then woken (SIGCONT). Its agent finds
it diverged, saves the unacknowledged tail, takes a backup (any backup older than the old
primary's last writes predates them: a re-clone needs a newer one) and re-clones it.

Printed per run and as median/max, from the wake-up (the old primary's agent log for the steps):
  diverged    its repoint found the errant tail (after its fence)
  saved       the tail written to data_dir/errant
  backup      the backup its agent asked for finished
  replicating haadm status shows it a replica with its IO thread running
  done        the re-clone's run ended (rejoined)

Run as root (the sandbox's servers run as root):
  /usr/bin/python3 tests/bench/bench_rejoin.py [--runs N]
Hold /tmp/work/itest.lock (flock) on a shared machine."""

import argparse
import datetime
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Sandbox  # noqa: E402
from writer import Writer  # noqa: E402

FIRST = 86
STEPS = {"diverged": " diverged errant=", "saved": " errant-saved ",
         "backup": " rejoin-backup-done ", "done": " rejoin-done "}


def log_times(sb, n, since):
    """The wall time of each step's first line after `since` in node n's agent log."""
    out = {}
    with open(os.path.join(sb.node_dir(n), "agent.log"), errors="replace") as f:
        for line in f:
            try:
                t = datetime.datetime.strptime(line[:24], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except ValueError:
                continue
            if t < since:
                continue
            for k, pat in STEPS.items():
                if k not in out and pat in line:
                    out[k] = t - since
    return out


def one_run(sb):
    s = sb.status()
    old = s["primary"]
    n = int(old[-1])
    others = [i for i in (1, 2, 3) if i != n]
    w = Writer(sb)
    w.setup()
    w.start()
    try:
        w.wait_acks(50)
        for i in others:
            r = sb.haadm("node", "maintenance", f"node{i}", "on", conf_node=i)
            assert r.returncode == 0, r.stdout + r.stderr
        for i in others:
            sb.wait_for(lambda i=i: sb.node(sb.status(conf_node=i), f"node{i}")["maintenance"],
                        10)
            sb.sql(i, "STOP SLAVE IO_THREAD")

        def stalled():
            a = len(w.acked)
            time.sleep(0.6)
            return len(w.acked) == a
        sb.wait_for(stalled, 10, what="a commit waiting for its acknowledgement")
        pids = [sb.db_pid(n), sb.agent_pid(n)]
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        for i in others:
            sb.haadm("node", "maintenance", f"node{i}", "off", conf_node=i)

        def promoted():
            for c in others:
                try:
                    st = sb.status(conf_node=c)
                except Exception:  # noqa: BLE001
                    continue
                p = st.get("primary")
                if p and p != old and st.get("authoritative") and \
                        (st.get("failover") or {}).get("phase") == "done":
                    return st
            return None
        new = sb.wait_for(promoted, 60, what="a new primary")["primary"]
        w.wait_acks(20)
        wall, t0 = time.time(), time.monotonic()
        for p in reversed(pids):
            os.kill(p, signal.SIGCONT)
        q = int(new[-1])

        def replicating():
            x = sb.node(sb.status(conf_node=q), old)
            return x if x["role"] == "replica" and x["io_running"] else None
        sb.wait_for(replicating, 600, interval=0.1, what=f"{old} replicating")
        t_rep = time.monotonic() - t0

        def done():
            x = sb.node(sb.status(conf_node=q), old)
            return x if (x["rejoin"] or "").startswith("rejoined") else None
        x = sb.wait_for(done, 120, interval=0.2, what=f"{old} rejoined")
        w.wait_acks(20)
    finally:
        w.stop()
    missing = w.missing_on(q)
    steps = log_times(sb, n, wall)
    steps["replicating"] = t_rep
    return old, steps, x["errant_saved"], missing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    args = ap.parse_args()
    sb = Sandbox(first=FIRST)
    try:
        sb.up()
        sb.wait_leader()
        sb.wait_for(sb.whole, 60, what="a whole cluster")
        r = sb.haadm("backup", "run", "--wait", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = []
        for i in range(args.runs):
            if i:
                sb.wait_for(sb.whole, 120, what="a whole cluster")
                time.sleep(35)  # past cooldown_ms after the previous failover
            old, steps, saved, missing = one_run(sb)
            rows.append(steps)
            print(f"run {i + 1}: {old} " + " ".join(
                f"{k}={steps[k]:.2f}s" for k in ("diverged", "saved", "backup", "replicating",
                                                 "done") if k in steps) +
                  f"; {saved}; acknowledged writes lost: {len(missing)}", flush=True)
        print("\nfrom the wake-up (SIGCONT), over %d runs:" % len(rows))
        for k in ("diverged", "saved", "backup", "replicating", "done"):
            v = [r[k] for r in rows if k in r]
            if v:
                print(f"  {k:<12} median {statistics.median(v):6.2f} s   max {max(v):6.2f} s")
    finally:
        sb.destroy()


if __name__ == "__main__":
    main()
