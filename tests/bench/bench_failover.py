#!/usr/bin/env python3
"""Failover benchmark: time from a fault on the primary to the first write acknowledged by the new
primary, as seen by a client that follows whatever the cluster reports as primary (haadm status).

Scenarios (each BENCH_RUNS times, default 10):
  crash      kill -9 of the primary's mariadbd (its agent sees it at once)
  host       kill -9 of the primary's mariadbd and agent together (host loss)
  partition  the primary's node cut from both others (nftables on its cgroup), healed after

Prints median and max per scenario and the median of each failover phase. Run as root:
  /usr/bin/python3 tests/bench/bench_failover.py [--runs N] [--scenarios crash,host,partition]

For comparison (not run here: it needs SSH between hosts): MHA 0.58, measured on this kind of
machine against three MariaDB 10.11 nodes on loopback, took 16.6-21.6 s with its defaults and
about 10 s with ping_interval=1 (figures from the project's issue notes)."""

import argparse
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import pymysql  # noqa: E402

from harness import Sandbox  # noqa: E402
from netfault import NetFaults  # noqa: E402

FIRST = 71


def try_write(sb, name, i):
    n = int(name[4:])
    c = pymysql.connect(host=sb.ip(n), port=3306, user="app", password="app", connect_timeout=1,
                        read_timeout=2, write_timeout=2, autocommit=True)
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO sandbox.bench (id) VALUES (%s)", (i,))
    finally:
        c.close()


def one_run(sb, net, scenario, seq):
    net.heal()
    sb.up()
    s = sb.wait_for(sb.whole, 60, what="a whole cluster")
    old = s["primary"]
    p = int(old[-1])
    try_write(sb, old, seq * 1000)  # the primary takes writes before the fault
    others = [n for n in (1, 2, 3) if n != p]
    t0 = time.monotonic()
    if scenario == "crash":
        os.kill(sb.db_pid(p), signal.SIGKILL)
    elif scenario == "host":
        os.kill(sb.agent_pid(p), signal.SIGKILL)
        os.kill(sb.db_pid(p), signal.SIGKILL)
    else:
        net.isolate(p)
    i = seq * 1000 + 1
    deadline = t0 + 60
    while time.monotonic() < deadline:
        try:
            st = sb.status(conf_node=others[0])
        except Exception:  # noqa: BLE001 - mid-election
            time.sleep(0.02)
            continue
        new = st.get("primary")
        if new and new != old:
            try:
                try_write(sb, new, i)
                took = time.monotonic() - t0
                break
            except Exception:  # noqa: BLE001 - not writable yet
                i += 1
        time.sleep(0.02)
    else:
        raise RuntimeError(f"{scenario}: no write on a new primary within 60 s")
    fo = sb.status(conf_node=others[0])["failover"]
    net.heal()
    return took, fo["phase_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "10")))
    ap.add_argument("--scenarios", default="crash,host,partition")
    args = ap.parse_args()
    net = NetFaults(f"b{os.getpid()}", lambda n: f"127.0.0.{FIRST + n - 1}")
    sb = Sandbox(first=FIRST, cgroup_prefix=net.cgroup_prefix)
    results = {}
    try:
        sb.up()
        sb.sql(1, "CREATE TABLE IF NOT EXISTS sandbox.bench (id BIGINT PRIMARY KEY)")
        seq = 1
        for scenario in args.scenarios.split(","):
            times, phases = [], []
            for r in range(args.runs):
                took, ph = one_run(sb, net, scenario, seq)
                seq += 1
                times.append(took)
                phases.append(ph)
                print(f"{scenario:9s} run {r + 1:2d}: {took:5.2f} s  (phases ms: fence {ph['fence']}, "
                      f"choose {ph['choose']}, promote {ph['promote']})", flush=True)
            results[scenario] = (times, phases)
    finally:
        net.heal()
        sb.destroy()
        net.close()
    print()
    print(f"{'scenario':10s} {'runs':>4s} {'median s':>9s} {'max s':>7s} {'min s':>7s}  "
          f"median phases (fence/choose/promote ms)   vs MHA default 16.6 s")
    for scenario, (times, phases) in results.items():
        med = statistics.median(times)
        fence = statistics.median(p["fence"] for p in phases)
        choose = statistics.median(p["choose"] for p in phases)
        promote = statistics.median(p["promote"] for p in phases)
        print(f"{scenario:10s} {len(times):4d} {med:9.2f} {max(times):7.2f} {min(times):7.2f}  "
              f"{fence:6.0f} / {choose:6.0f} / {promote:6.0f}                  "
              f"{16.6 / med:5.1f}x faster")


if __name__ == "__main__":
    main()
