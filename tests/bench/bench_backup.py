#!/usr/bin/env python3
"""Backup benchmark, one dataset, one run: haagent's backup pipeline (mariadb-backup stream ->
zstd -> AES-256-GCM -> SHA-256, chunked, on worker threads) against the same stream piped into
`zstd -1 -T<cores>` and against mydumper, all reading the same replica; restore (extract,
decrypt, decompress, prepare) against `mariadb-backup --copy-back` of an unencrypted prepared
backup; sizes; and the primary's write throughput while a scheduled backup runs on a replica.

  /usr/bin/python3 tests/bench/bench_backup.py [--tables 4] [--rows 250000] [--rounds 3]

Run as root. Uses 127.0.0.71-73 (the benchmark range) and sysbench's oltp tables."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import HAADM, Sandbox  # noqa: E402

FIRST = 71


def sh(cmd, **kw):
    t0 = time.monotonic()
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError(f"{cmd}: {r.stderr[-2000:]}")
    return time.monotonic() - t0, r.stdout


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def sysbench(sb, n, args, cmd, seconds=None):
    sock = f"{sb.node_dir(n)}/mariadbd.sock"
    extra = f"--time={seconds} --report-interval=0" if seconds else ""
    _, out = sh(f"sysbench {args} --mysql-socket={sock} --mysql-user=root --mysql-db=sandbox "
                f"{extra} {cmd}", timeout=3600)
    return out


def tps(out):
    for line in out.splitlines():
        if "transactions:" in line:
            return float(line.split("(")[1].split()[0])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=250000)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved backup rounds (median)")
    a = ap.parse_args()
    sb = Sandbox(first=FIRST)
    work = tempfile.mkdtemp(prefix="haagent-bench-")
    cores = os.cpu_count() or 2
    oltp = f"oltp_write_only --tables={a.tables} --table-size={a.rows} --threads=2"
    try:
        sb.up()
        sb.wait_for(sb.whole, 60, what="a whole cluster")
        p = int(sb.status()["primary"][-1])
        t, _ = sh(f"true")
        print(f"loading {a.tables} x {a.rows} rows (sysbench oltp) ...", flush=True)
        sysbench(sb, p, oltp, "prepare")
        want = sb.sql(p, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: (lambda s: s if s and {x["gtid"] for x in s["nodes"]} == {want}
                             else None)(sb.whole()), 300, what="replicas caught up")
        # and the binlog archive holds the load (its catching up would share the 2 cores
        # with the backups timed below; in steady state it trails by seconds)
        t0 = time.monotonic()
        sb.wait_for(lambda: (sb.status().get("archive") or {}).get("head_gtid") == want, 600,
                    interval=0.5, what="the archive caught up")
        print(f"the binlog archive caught up with the load in {time.monotonic() - t0:.1f} s "
              f"after the replicas", flush=True)
        hpw = open(os.path.join(sb.dir, "haagent.password")).read().strip()
        cnf = os.path.join(work, "client.cnf")
        with open(cnf, "w") as f:
            f.write(f"[client]\npassword={hpw}\n[mydumper]\npassword={hpw}\n"
                    f"[mariadb-backup]\npassword={hpw}\n")
        os.chmod(cnf, 0o600)

        # 1. haagent, scheduled the normal way, on an idle cluster (as the peers below)
        def backup(*args):
            r = subprocess.run([HAADM, "-c", sb.conf(1), "backup", "run", "--wait", "--json",
                                *args], capture_output=True, text=True, timeout=3600)
            bid = json.loads(r.stdout)["id"]
            return bid, next(b for b in json.loads(subprocess.run(
                [HAADM, "-c", sb.conf(1), "backup", "list", "--json"], capture_output=True,
                text=True).stdout)["backups"] if b["id"] == bid)
        # 2. the same stream into zstd, from the same replica; haagent's backup is on disk when
        # it appears (syncfs before the manifest): the same for the peer, timed apart.
        # Interleaved rounds, so that neither side alone gets the replica still settling
        # after the load (its page cleaner) or a warmer cache.
        zst = os.path.join(work, "plain.mbstream.zst")
        t_has, t_zstds, t_syncs = [], [], []
        for rnd in range(a.rounds):
            bid, rec = backup(*(["--node", f"node{node}"] if rnd else []))
            if rnd == 0:
                node = int(rec["node"][-1])
                ip = sb.ip(node)
                raw = rec["bytes_in"]
            t_has.append((rec["finished_unix_ms"] - rec["started_unix_ms"]) / 1000)
            t, _ = sh(f"mariadb-backup --defaults-extra-file={cnf} --backup --stream=mbstream "
                      f"--target-dir={work}/t1 --host={ip} --port=3306 --user=haagent "
                      f"2>/dev/null | zstd -1 -T{cores} -q -f -o {zst}", timeout=3600)
            t_zstds.append(t)
            t, _ = sh(f"sync {zst}")
            t_syncs.append(t)
            shutil.rmtree(f"{work}/t1", ignore_errors=True)
        t_ha = statistics.median(t_has)
        t_zstd = statistics.median(t_zstds)
        t_sync = statistics.median(t_syncs)
        # 3. mydumper (logical), same replica
        dump = os.path.join(work, "dump")
        t_dump, _ = sh(f"mydumper --defaults-file={cnf} -h {ip} -P 3306 -u haagent "
                       f"-B sandbox -t {cores} -o {dump}", timeout=3600)

        # 4. restore: haagent (chunks -> mbstream -> prepare) vs copy-back of a prepared
        # unencrypted backup
        t_rest, _ = sh(f"{HAADM} -c {sb.conf(1)} restore {bid} --target-dir {work}/r1",
                       timeout=3600)
        plain = os.path.join(work, "plain")
        t_plainx, _ = sh(f"mkdir -p {plain} && zstd -dc -T{cores} {zst} | mbstream -x -C {plain}",
                         timeout=3600)
        t_prep, _ = sh(f"mariadb-backup --prepare --target-dir={plain} 2>/dev/null", timeout=3600)
        t_copy, _ = sh(f"mariadb-backup --copy-back --target-dir={plain} --datadir={work}/r2 "
                       f"2>/dev/null", timeout=3600)
        size_ha = rec["bytes_stored"]

        # 5. the primary's write throughput alone, and while a backup runs on a replica
        base = tps(sysbench(sb, p, oltp, "run", seconds=15))
        proc = subprocess.Popen(
            f"sysbench {oltp} --mysql-socket={sb.node_dir(p)}/mariadbd.sock --mysql-user=root "
            f"--mysql-db=sandbox --time=15 --report-interval=0 run", shell=True,
            stdout=subprocess.PIPE, text=True)
        _, rec2 = backup()
        during = tps(proc.communicate()[0])
        node2 = int(rec2["node"][-1])
        size_zst = os.path.getsize(zst)
        size_dump = du(dump)
    finally:
        sb.destroy()
        shutil.rmtree(work, ignore_errors=True)

    mb = raw / 1048576
    print()
    print(f"dataset: {a.tables} x {a.rows} sysbench rows; backup stream {mb:.0f} MiB; "
          f"{cores} cores; backups: median of {a.rounds} interleaved rounds")
    print(f"  haagent rounds: {' '.join(f'{t:.2f}' for t in t_has)} s; "
          f"mariadb-backup | zstd rounds: {' '.join(f'{t:.2f}' for t in t_zstds)} s")
    print(f"{'backup':44s} {'seconds':>8s} {'MiB/s':>8s} {'stored MiB':>11s}  vs haagent")
    print(f"{'haagent (zstd-1 + AES-256-GCM + SHA-256)':44s} {t_ha:8.2f} {mb / t_ha:8.1f} "
          f"{size_ha / 1048576:11.1f}  1.00x")
    print(f"{'mariadb-backup --stream | zstd -1 -T' + str(cores):44s} {t_zstd:8.2f} "
          f"{mb / t_zstd:8.1f} {size_zst / 1048576:11.1f}  haagent is {t_zstd / t_ha:.2f}x its "
          f"throughput")
    t_zs = t_zstd + t_sync
    print(f"{'  the same, then sync (on disk, as haagent)':44s} {t_zs:8.2f} {mb / t_zs:8.1f} "
          f"{size_zst / 1048576:11.1f}  haagent is {t_zs / t_ha:.2f}x its throughput")
    print(f"{'mydumper -t ' + str(cores) + ' (logical, uncompressed)':44s} {t_dump:8.2f} "
          f"{'':>8s} {size_dump / 1048576:11.1f}  haagent is {t_dump / t_ha:.2f}x its speed")
    print()
    print(f"{'restore':44s} {'seconds':>8s}")
    print(f"{'haagent restore (verify, decrypt, extract, prepare)':44s} {t_rest:8.2f}")
    print(f"{'plain: zstd -d | mbstream -x':44s} {t_plainx:8.2f}")
    print(f"{'plain: mariadb-backup --prepare':44s} {t_prep:8.2f}")
    print(f"{'plain: mariadb-backup --copy-back':44s} {t_copy:8.2f}")
    print(f"haagent restore vs extract+prepare+copy-back of the plain backup: "
          f"{(t_plainx + t_prep + t_copy) / t_rest:.2f}x; vs copy-back alone: "
          f"{t_copy / t_rest:.2f}x")
    sums = next((part.strip() for part in rec["detail"].split(";")
                 if "checksums" in part), "table checksums: not reported")
    print(f"after the backup (not in its time above): {sums}")
    print()
    print(f"primary write throughput (sysbench oltp_write_only, 2 threads): {base:.0f} tps "
          f"alone, {during:.0f} tps while a backup ran on node{node2} "
          f"({during / base if base else 0:.2f}x; all nodes share this machine's {cores} cores)")


if __name__ == "__main__":
    main()
