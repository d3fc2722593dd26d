#!/usr/bin/env python3
"""Membership benchmark: the time `haadm node add` takes from its start until the new node is a
raft voter, and its parts — the rebuild (the agent's `haadm node reclone` of itself: the newest
backup and the binlog archive restored, the server restarted on it) and the rest (raft's log,
replication catching up, the vote) — for growing datasets, with a writer adding rows while the
node joins. One sandbox; each size adds a new node (node4, node5, ...) after loading more rows
and taking a fresh full backup, then removes it again.

  /usr/bin/python3 tests/bench/bench_membership.py [--sizes 20000,200000,600000]

Run as root. Uses 127.0.0.71-73 (the benchmark range) and 127.0.0.74.. for the new nodes."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Sandbox  # noqa: E402
from writer import Writer  # noqa: E402

FIRST = 71


def load(sb, primary, rows, start):
    """rows more rows of ~220 bytes in sandbox.bulk (batched inserts on the primary)."""
    sb.sql(primary, "CREATE TABLE IF NOT EXISTS sandbox.bulk (id BIGINT PRIMARY KEY, pad "
                    "VARCHAR(255))")
    done = 0
    while done < rows:
        n = min(50000, rows - done)
        sb.sql(primary, f"INSERT INTO sandbox.bulk SELECT seq + {start + done}, "
                        f"REPEAT('x', 200) FROM sandbox.seq_1_to_{n}", timeout=300)
        done += n


def rebuild_ms(sb, n):
    with open(os.path.join(sb.node_dir(n), "agent.log")) as f:
        m = re.findall(r"rebuild-done .* ms=(\d+)", f.read())
    return int(m[-1]) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20000,200000,600000")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    sb = Sandbox(first=FIRST)
    rows = []
    try:
        sb.up()
        sb.wait_leader()
        sb.wait_for(sb.whole, 60, what="a whole cluster")
        loaded = 0
        for i, size in enumerate(sizes):
            n = 4 + i
            primary = int(sb.status()["primary"][4:])
            load(sb, primary, size - loaded, loaded)
            loaded = size
            sb.sql(primary, "ANALYZE TABLE sandbox.bulk")
            datadir_mb = int(sb.sql(primary, "SELECT ROUND(SUM(data_length + index_length) / "
                                             "1048576) FROM information_schema.tables WHERE "
                                             "table_schema = 'sandbox'") or 0)
            r = sb.haadm("backup", "run", "--type", "full", "--wait", timeout=900)
            if r.returncode:
                raise RuntimeError(f"backup: {r.stdout}{r.stderr}")
            w = Writer(sb)
            w.setup()
            w.start()
            try:
                sb.run_sandbox("add-node", str(n), timeout=120)
                t0 = time.monotonic()
                r = sb.haadm("node", "add", f"node{n}", "--address", sb.ip(n), "--id", str(n),
                             "--timeout", "900", "--json", timeout=960)
                total = time.monotonic() - t0
            finally:
                w.stop()
            out = json.loads(r.stdout)
            if r.returncode or out["result"] != "joined":
                raise RuntimeError(f"node add: {r.stdout}{r.stderr}")
            rb = rebuild_ms(sb, n)
            rows.append((size, datadir_mb, total, rb / 1000 if rb else float("nan"),
                         len(w.acked)))
            print(f"rows {size:>8}  data {datadir_mb:>5} MiB  node add {total:6.2f} s  "
                  f"rebuild {rows[-1][3]:6.2f} s  rest {total - rows[-1][3]:5.2f} s  "
                  f"(writer acked {len(w.acked)} rows meanwhile)", flush=True)
            r = sb.haadm("node", "remove", f"node{n}", timeout=60)
            if r.returncode:
                raise RuntimeError(f"node remove: {r.stdout}{r.stderr}")
            for pid in (sb.agent_pid(n), sb.db_pid(n)):
                if pid:
                    os.kill(pid, 9)
            shutil.rmtree(sb.node_dir(n), ignore_errors=True)
    finally:
        sb.destroy()
    print("\nrows      MiB  node-add  rebuild  rest   (seconds)")
    for size, mb, total, rb, _ in rows:
        print(f"{size:>8} {mb:>5} {total:8.2f} {rb:8.2f} {total - rb:6.2f}")


if __name__ == "__main__":
    main()
