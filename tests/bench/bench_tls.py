#!/usr/bin/env python3
"""What mutual TLS costs (docs/security.md): the same measurements on a sandbox with TLS on (the
default) and on one with `[tls] insecure = yes`, in the same run, printed side by side with their
ratio (TLS / plain; the target is within 10 %):

  failover   kill -9 of the primary's mariadbd to the first write acknowledged by the new
             primary (bench_failover.py's crash scenario), BENCH_RUNS times; "phases" is the
             coordinator's own record of it (fence + choose + promote), without the client's
             part (finding the new primary with haadm status, connecting)
  switchover write pause across `haadm failover` under a continuous writer (bench_switchover.py);
             "phases" as above
  status     one `haadm status` round trip (process start, TLS handshake, leader redirect)
  handshake  TLS connections per second that one agent accepts on its RPC port (connect,
             handshake with a client certificate, one status request answered, close)
  cpu        the three agents' CPU time while idle (health reports every 250 ms, raft
             heartbeats every 50 ms), in ms per second

Run as root (2 cores shared by both sandboxes' processes; run nothing else meanwhile):
  /usr/bin/python3 tests/bench/bench_tls.py [--runs N]"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from bench_failover import one_run as failover_run  # noqa: E402
from bench_switchover import one_run as switchover_run  # noqa: E402
from harness import HAADM, Sandbox  # noqa: E402
from writer import Writer  # noqa: E402

FIRST = 71


class NoNet:
    """bench_failover's crash scenario needs no network faults."""

    def heal(self):
        pass


def agent_cpu_ms(sb):
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for n in (1, 2, 3):
        with open(f"/proc/{sb.agent_pid(n)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) * 1000 // tick
    return total


def handshakes_per_s(sb, seconds):
    req = b"HA\x01\x03" + struct.pack(">I", 0)  # StatusRequest, empty
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        s = sb.connect(sb.ip(1), 7200)
        s.sendall(req)
        h = s.recv(8)
        if len(h) < 8:
            raise RuntimeError("no answer to a status request")
        s.close()
        n += 1
    return n / (time.monotonic() - t0)


def measure(insecure, runs):
    sb = Sandbox(first=FIRST, insecure=insecure)
    out = {}
    try:
        sb.up()
        sb.wait_leader()
        sb.sql(1, "CREATE TABLE IF NOT EXISTS sandbox.bench (id BIGINT PRIMARY KEY)")
        time.sleep(3)
        c0, t0 = agent_cpu_ms(sb), time.monotonic()
        time.sleep(20)
        out["cpu"] = (agent_cpu_ms(sb) - c0) / (time.monotonic() - t0)
        times = []
        for _ in range(20):
            t = time.monotonic()
            r = subprocess.run([HAADM, "-c", sb.conf(2), "status"], capture_output=True,
                               timeout=20)
            if r.returncode != 0:
                raise RuntimeError(f"status: {r.stderr}")
            times.append(time.monotonic() - t)
        out["status"] = [x * 1000 for x in times]
        out["handshake"] = handshakes_per_s(sb, 5)
        fo, fo_total = [], []
        for r in range(runs):
            took, ph, _ = failover_run(sb, NoNet(), "crash", 1000 + r)
            fo.append(took * 1000)
            fo_total.append(ph["total"])
            print(f"{'tls' if not insecure else 'plain'} failover run {r + 1}: {took:.2f} s",
                  flush=True)
        out["failover"] = fo
        out["failover phases"] = fo_total
        sb.up()
        w = Writer(sb, table="sandbox.bench_switchover")
        w.setup()
        w.start()
        gaps, so_total = [], []
        try:
            for r in range(1, runs * 2 + 1):
                gap, ph, _, _ = switchover_run(sb, w, r)
                gaps.append(gap * 1000)
                so_total.append(ph["total"])
        finally:
            w.stop()
        out["switchover"] = gaps
        out["switchover phases"] = so_total
    finally:
        sb.destroy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    args = ap.parse_args()
    tls = measure(False, args.runs)
    plain = measure(True, args.runs)
    med = statistics.median
    print()
    print(f"{'measure':18s} {'TLS':>12s} {'plain':>12s} {'TLS/plain':>10s}")
    for key, unit in (("failover", "ms"), ("failover phases", "ms"), ("switchover", "ms"),
                      ("switchover phases", "ms"), ("status", "ms")):
        a, b = med(tls[key]), med(plain[key])
        print(f"{key:18s} {a:9.0f} {unit} {b:9.0f} {unit} {a / b:10.2f}   "
              f"(median of {len(tls[key])}; max {max(tls[key]):.0f} vs {max(plain[key]):.0f})")
    a, b = tls["handshake"], plain["handshake"]
    print(f"{'handshake':18s} {a:8.0f} /s {b:8.0f} /s {a / b:10.2f}   "
          f"(connections answered per second by one agent)")
    a, b = tls["cpu"], plain["cpu"]
    print(f"{'cpu idle':18s} {a:7.1f} ms/s {b:7.1f} ms/s {a / b:9.2f}   "
          f"(three agents together, per second of wall time)")


if __name__ == "__main__":
    main()
