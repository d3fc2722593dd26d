#!/usr/bin/env python3
"""Binlog archive and point-in-time recovery benchmark, one run: how far the archive trails the
primary under a sysbench write load (transactions and seconds, sampled twice a second), and the
replay of the archived history onto a restored backup against the peer tool run on the same
machine — `mariadb-binlog <the primary's binary log files> | mariadb` into the same restored
backup, started the same way.

  /usr/bin/python3 tests/bench/bench_pitr.py [--seconds 60] [--tables 4] [--rows 20000]

Run as root. Uses 127.0.0.71-73 (the benchmark range) and sysbench's oltp tables."""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import HAADM, Sandbox  # noqa: E402

FIRST = 71


def seq_of(pos):
    """The highest sequence number of domain 0 in a GTID position ("" -> 0)."""
    for g in (pos or "").split(","):
        d, _, n = g.strip().split("-") if g.strip() else ("", "", "0")
        if d == "0":
            return int(n)
    return 0


def haadm(sb, *args, timeout=900):
    r = subprocess.run([HAADM, "-c", sb.conf(1)] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"haadm {' '.join(args)}: {r.stdout}{r.stderr}")
    return r.stdout


def server(datadir, sock, log):
    p = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={sock}",
                          "--skip-networking", "--skip-grant-tables", "--skip-slave-start",
                          "--user=root", "--innodb-buffer-pool-size=64M", f"--log-error={log}",
                          f"--pid-file={datadir}/bench.pid"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if subprocess.run(["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "-e",
                           "SELECT 1"], capture_output=True).returncode == 0:
            return p
        time.sleep(0.1)
    raise RuntimeError("the restored server does not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20000)
    a = ap.parse_args()
    sb = Sandbox(first=FIRST)
    work = tempfile.mkdtemp(prefix="haagent-bench-pitr-")
    oltp = f"oltp_write_only --tables={a.tables} --table-size={a.rows} --threads=2"
    try:
        sb.up()
        sb.wait_for(sb.whole, 60, what="a whole cluster")
        p = int(sb.status()["primary"][-1])
        sock = f"{sb.node_dir(p)}/mariadbd.sock"
        base = (f"sysbench {oltp} --mysql-socket={sock} --mysql-user=root "
                f"--mysql-db=sandbox")
        subprocess.run(f"{base} prepare", shell=True, check=True, capture_output=True)
        backup = json.loads(haadm(sb, "backup", "run", "--wait", "--json"))
        start_pos = sb.sql(p, "SELECT @@gtid_binlog_pos")

        # ---- archive lag under load ----
        samples = []  # (t, primary seq, head seq)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                t = time.monotonic()
                try:
                    pseq = seq_of(sb.sql(p, "SELECT @@gtid_binlog_pos", timeout=5))
                    a_ = sb.status().get("archive") or {}
                    samples.append((t, pseq, seq_of(a_.get("head_gtid")), time.monotonic()))
                except Exception:  # noqa: BLE001
                    pass
                time.sleep(0.5)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        run = subprocess.run(f"{base} --time={a.seconds} --report-interval=0 run", shell=True,
                             capture_output=True, text=True)
        time.sleep(3)
        stop.set()
        th.join()
        tps = next((float(l.split("(")[1].split()[0]) for l in run.stdout.splitlines()
                    if "transactions:" in l), 0.0)
        # lag in seconds: how long ago the primary had first logged a transaction the head
        # still lacks (from the primary samples)
        lag_s, lag_tx = [], []
        for t, pseq, hseq, t_end in samples:
            lag_tx.append(max(0, pseq - hseq))
            first = next((ts for ts, ps, _, _ in samples if ps > hseq), None)
            lag_s.append(max(0.0, t_end - first) if first is not None and first <= t_end else 0.0)
        end_pos = sb.sql(p, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: (sb.status().get("archive") or {}).get("head_gtid") == end_pos, 120,
                    what="the archive caught up")
        arch = sb.status()["archive"]
        txns = seq_of(end_pos) - seq_of(start_pos)

        # ---- replay: haagent restore --to-time now vs mariadb-binlog | mariadb ----
        time.sleep(1.1)
        point = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        d1 = os.path.join(work, "pitr")
        t0 = time.monotonic()
        out = json.loads(haadm(sb, "restore", "--to-time", point, "--target-dir", d1, "--json"))
        t_pitr = time.monotonic() - t0
        d2 = os.path.join(work, "plain")
        t0 = time.monotonic()
        haadm(sb, "restore", str(backup["id"]), "--target-dir", d2)
        t_restore = time.monotonic() - t0
        # the peer: the primary's own binary log files after the backup, into the same backup
        ssock = os.path.join(work, "peer.sock")
        srv = server(d2, ssock, os.path.join(work, "peer.err"))
        files = sorted(f for f in os.listdir(os.path.join(sb.node_dir(p), "data"))
                       if f.split(".")[-1].isdigit() and "-bin." in f)
        bpos = json.loads(haadm(sb, "backup", "show", str(backup["id"]), "--json"))["gtid"]
        t0 = time.monotonic()
        subprocess.run(
            f"mariadb-binlog --no-defaults --start-position={bpos} "
            + " ".join(os.path.join(sb.node_dir(p), "data", f) for f in files)
            + f" | mariadb --no-defaults -uroot --socket={ssock} --binary-mode",
            shell=True, check=True)
        t_peer = time.monotonic() - t0
        srv.send_signal(signal.SIGTERM)
        srv.wait(120)
        replay = max(t_pitr - t_restore, 0.001)
        print(f"sysbench oltp_write_only, 2 threads, {a.seconds} s on the primary: {tps:.0f} tps, "
              f"{txns} transactions archived in {arch['slices']} slices, "
              f"{arch['bytes'] / 1048576:.1f} MiB stored")
        print(f"archive lag behind the primary (sampled every 0.5 s, {len(samples)} samples): "
              f"median {statistics.median(lag_s):.2f} s, p95 "
              f"{sorted(lag_s)[int(len(lag_s) * 0.95) - 1]:.2f} s, max {max(lag_s):.2f} s; "
              f"transactions behind: median {statistics.median(lag_tx):.0f}, max {max(lag_tx)}")
        print(f"point-in-time restore: {t_pitr:.1f} s in all ({out['replayed']} transactions "
              f"replayed); the backup alone restores in {t_restore:.1f} s, so the replay "
              f"(server start, stream, apply, clean stop) took {replay:.1f} s = "
              f"{out['replayed'] / replay:.0f} transactions/s")
        print(f"peer: mariadb-binlog <{len(files)} binlog files> | mariadb into the same "
              f"restored backup: {t_peer:.1f} s = {txns / t_peer:.0f} transactions/s "
              f"(server already started); haadm's replay is {t_peer / replay:.2f}x its speed")
    finally:
        sb.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
