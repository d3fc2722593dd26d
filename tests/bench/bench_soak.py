#!/usr/bin/env python3
"""Soak benchmark: a randomized fault schedule (tests/integration/nemesis.py) for N minutes
against a real three-node sandbox, with several writers keeping commits in flight and all three
servers' read_only sampled ten times a second.

Faults are dealt from shuffled decks of the whole catalogue (kill -9 / SIGSTOP of mariadbd and of
agents, the raft leader's included; partitions; the agent's credentials broken on the primary;
max_connections exhausted; a long replicating DDL, optionally with the primary killed; a slow SQL
thread, optionally with the primary killed; a candidate killed mid-promotion), each with targets
and durations drawn from the seed. The seed is printed first; --seed N (or HA_NEMESIS_SEED=N)
replays the same schedule.

Prints, per fault class: faults injected, failovers seen, lost acknowledged writes,
double-writable samples, the longest time without a writable primary, the longest gap between
acknowledged writes, the time from a heal to a writable primary. Exits 1 on any invariant
violation (each one printed with the seed and the fault), 0 otherwise. Run as root:
  /usr/bin/python3 tests/bench/bench_soak.py [--minutes 30] [--seed N] [--writers 4]"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import nemesis  # noqa: E402
from harness import Sandbox  # noqa: E402
from netfault import NetFaults  # noqa: E402

FIRST = 151


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=None,
                    help="replay a schedule (default: $HA_NEMESIS_SEED, else random)")
    ap.add_argument("--writers", type=int, default=4, help="writer threads (commits in flight)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else nemesis.seed_from_env()
    print(f"soak: nemesis seed {seed} (replay: --seed {seed} or HA_NEMESIS_SEED={seed}), "
          f"{args.minutes:g} minutes", flush=True)

    net = NetFaults(f"s{os.getpid()}", lambda n: f"127.0.0.{FIRST + n - 1}")
    sb = Sandbox(first=FIRST, cgroup_prefix=net.cgroup_prefix)
    nem = None
    t0 = time.monotonic()
    try:
        sb.up()
        nem = nemesis.Nemesis(sb, net, seed, writers=args.writers)
        schedule = nemesis.Schedule(seed)
        deadline = time.monotonic() + args.minutes * 60
        try:
            nem.start()
            while time.monotonic() < deadline and not nem.aborted:
                nem.run([schedule.next()])
        except nemesis.Abort as e:
            nem.violation(None, f"the cluster stopped answering: {e}")
        finally:
            nem.finish()
    finally:
        net.heal()
        try:
            sb.destroy()
        finally:
            net.close()
            print()
            print(nem.report() if nem else f"seed {seed}: the sandbox did not start")
            print(f"soak: {(time.monotonic() - t0) / 60:.1f} minutes in all", flush=True)
    sys.exit(1 if nem is None or nem.violations else 0)


if __name__ == "__main__":
    main()
