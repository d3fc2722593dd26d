#!/usr/bin/env python3
"""Repository benchmark, one dataset, one run: a backup and its verification (every chunk read
back, checked and decrypted) to a directory and to an S3 bucket (real radosgw on loopback:
deploy/radosgw.sh), the cost of a second repository (the backup's own duration, and how long
the copier takes to bring it to the bucket), a whole restore (fetch, check, decrypt, extract,
prepare) of the same backup from each of the two repositories, against `mariadb-backup --stream |
zstd -1 -T2 | s3cmd put -` and `s3cmd get | zstd -d | mbstream -x` (+ `mariadb-backup --prepare`
for the restore) from the same replica.

  /usr/bin/python3 tests/bench/bench_repos.py [--tables 2] [--rows 200000] [--rounds 2]

Run as root (installs s3cmd when missing). Uses 127.0.0.71-73 (the benchmark range) and
radosgw on 127.0.0.74:7484."""

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

from harness import HAADM, SRC, Sandbox  # noqa: E402

FIRST = 71
RGW_IP, RGW_PORT = "127.0.0.74", 7484
BUCKET = "haagent-bench"
S3TOOL = os.environ.get("S3TOOL", os.path.join(SRC, "build", "tests", "s3tool"))


def sh(cmd, **kw):
    t0 = time.monotonic()
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError(f"{cmd}: {r.stderr[-2000:]}")
    return time.monotonic() - t0, r.stdout


def s3_section(keys, first):
    return (f"[repository s3]\ntype = s3\nendpoint = http://{RGW_IP}:{RGW_PORT}\n"
            f"bucket = {BUCKET}\nprefix = {first}\ncredentials_file = {keys}\n")


def set_repos(sb, text):
    """Every node's repositories replaced by text (the sandbox's [repository local] section
    and whatever follows it up to the next section), agents restarted."""
    for n in (1, 2, 3):
        with open(sb.conf(n)) as f:
            lines = f.read().split("\n")
        out, skip, done = [], False, False
        for line in lines:
            if line.startswith("["):
                skip = line.strip().startswith("[repository ")
                if skip and not done:
                    out.extend(text.rstrip("\n").split("\n"))
                    out.append("")
                    done = True
            if not skip:
                out.append(line)
        with open(sb.conf(n), "w") as f:
            f.write("\n".join(out))
    sb.restart_agents_with("[backup]\ncopy_interval_ms = 1000\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=2)
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if shutil.which("s3cmd") is None:
        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q s3cmd", timeout=600)
    work = tempfile.mkdtemp(prefix="haagent-bench-repos-")
    rgw = ["bash", os.path.join(SRC, "deploy", "radosgw.sh"), "--dir", f"{work}/rgw", "--ip",
           RGW_IP, "--port", str(RGW_PORT)]
    sb = Sandbox(first=FIRST)
    cores = os.cpu_count() or 2
    res = {}
    try:
        sh(" ".join(rgw + ["start"]), timeout=300)
        keys = f"{work}/rgw/s3.keys"
        kv = dict(line.split(" = ", 1) for line in open(keys).read().split("\n") if " = " in line)
        sh(f"{S3TOOL} --endpoint http://{RGW_IP}:{RGW_PORT} --bucket {BUCKET} "
           f"--credentials-file {keys} mkbucket")
        s3cfg = f"{work}/s3cfg"
        with open(s3cfg, "w") as f:
            f.write(f"[default]\naccess_key = {kv['access_key']}\nsecret_key = {kv['secret_key']}\n"
                    f"host_base = {RGW_IP}:{RGW_PORT}\nhost_bucket = {RGW_IP}:{RGW_PORT}\n"
                    "use_https = False\nsignature_v2 = False\n")
        os.chmod(s3cfg, 0o600)
        sb.up()
        sb.wait_for(sb.whole, 60, what="a whole cluster")
        p = int(sb.status()["primary"][-1])
        sock = f"{sb.node_dir(p)}/mariadbd.sock"
        print(f"loading {a.tables} x {a.rows} rows (sysbench oltp) ...", flush=True)
        sh(f"sysbench oltp_write_only --tables={a.tables} --table-size={a.rows} "
           f"--mysql-socket={sock} --mysql-user=root --mysql-db=sandbox prepare", timeout=3600)
        want = sb.sql(p, "SELECT @@gtid_binlog_pos")
        sb.wait_for(lambda: (sb.status().get("archive") or {}).get("head_gtid") == want, 600,
                    interval=0.5, what="the archive caught up")

        def haadm(*args, conf=None):
            r = subprocess.run([HAADM, "-c", conf or sb.conf(1), *args], capture_output=True,
                               text=True, timeout=3600)
            if r.returncode:
                raise RuntimeError(f"haadm {args}: {r.stdout}{r.stderr}")
            return r.stdout

        def record(bid):
            return json.loads(haadm("backup", "show", str(bid), "--json"))

        def backup(node):
            bid = json.loads(haadm("backup", "run", "--wait", "--json", "--node",
                                   f"node{node}"))["id"]
            rec = record(bid)
            return rec, (rec["finished_unix_ms"] - rec["started_unix_ms"]) / 1000

        def verify(bid):
            t0 = time.monotonic()
            haadm("backup", "verify", str(bid))
            return time.monotonic() - t0

        def restore(bid, repo, i):
            target = f"{work}/restore-{repo}-{i}"
            t0 = time.monotonic()
            haadm("restore", str(bid), "--target-dir", target, "--repository", repo)
            t = time.monotonic() - t0
            shutil.rmtree(target, ignore_errors=True)
            return t

        replica = next(int(x["name"][-1]) for x in sb.status()["nodes"]
                       if int(x["name"][-1]) != p)
        local = open(sb.conf(1)).read().split("[repository local]")[1].split("[")[0]
        local = "[repository local]" + local
        configs = (("directory", local),
                   ("s3", s3_section(keys, "only")),
                   ("directory + s3", local + "\n" + s3_section(keys, "second")))
        restores = {"local": [], "s3": []}
        for label, text in configs:
            set_repos(sb, text)
            b, v, c = [], [], []
            for _ in range(a.rounds):
                rec, t = backup(replica)
                b.append(t)
                if "+" in label:
                    t0 = time.monotonic()
                    sb.wait_for(lambda: len(record(rec["id"])["repositories"]) == 2, 600,
                                interval=0.2, what="the copy to the bucket")
                    c.append(time.monotonic() - t0)
                    # the same backup restored from each repository alone
                    for repo in restores:
                        restores[repo].append(restore(rec["id"], repo, len(c)))
                v.append(verify(rec["id"]))
            res[label] = (statistics.median(b), statistics.median(v),
                          statistics.median(c) if c else None, rec["bytes_in"],
                          rec["bytes_stored"])
        # the peer: a stock S3 client behind the same stream
        hpw = open(os.path.join(sb.dir, "haagent.password")).read().strip()
        cnf = os.path.join(work, "client.cnf")
        with open(cnf, "w") as f:
            f.write(f"[mariadb-backup]\npassword={hpw}\n")
        os.chmod(cnf, 0o600)
        peer_b, peer_r, peer_x = [], [], []
        for i in range(a.rounds):
            t, _ = sh(f"mariadb-backup --defaults-extra-file={cnf} --backup --stream=mbstream "
                      f"--target-dir={work}/t{i} --host={sb.ip(replica)} --port=3306 "
                      f"--user=haagent 2>/dev/null | zstd -1 -T{cores} -q | "
                      f"s3cmd -c {s3cfg} put - s3://{BUCKET}/peer{i}.zst", timeout=3600)
            peer_b.append(t)
            os.makedirs(f"{work}/x{i}")
            t, _ = sh(f"s3cmd -c {s3cfg} get s3://{BUCKET}/peer{i}.zst - | zstd -dc -T{cores} "
                      f"| mbstream -x -C {work}/x{i}", timeout=3600)
            peer_r.append(t)
            t, _ = sh(f"mariadb-backup --prepare --target-dir={work}/x{i} 2>/dev/null",
                      timeout=3600)
            peer_x.append(peer_r[-1] + t)
            shutil.rmtree(f"{work}/t{i}", ignore_errors=True)
            shutil.rmtree(f"{work}/x{i}", ignore_errors=True)
    finally:
        sb.destroy()
        subprocess.run(rgw + ["destroy"], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    mb = res["directory"][3] / 1048576
    tb = res["directory"][0]
    print()
    print(f"dataset: {a.tables} x {a.rows} sysbench rows; backup stream {mb:.0f} MiB; "
          f"{cores} cores; medians of {a.rounds} rounds; radosgw (one memstore OSD) on loopback")
    print(f"{'repositories':22s} {'backup s':>9s} {'MiB/s':>7s} {'verify s':>9s} {'MiB/s':>7s} "
          f"{'copy to s3 s':>13s}  backup vs directory")
    for label, (b, v, c, raw, stored) in res.items():
        print(f"{label:22s} {b:9.2f} {raw / 1048576 / b:7.1f} {v:9.2f} {raw / 1048576 / v:7.1f} "
              f"{(f'{c:.2f}' if c is not None else '-'):>13s}  {b / tb:.2f}x")
    pb, pr = statistics.median(peer_b), statistics.median(peer_r)
    print(f"{'mariadb-backup|zstd|s3cmd':22s} {pb:9.2f} {mb / pb:7.1f} {pr:9.2f} {mb / pr:7.1f} "
          f"{'-':>13s}  haagent to s3 is {pb / res['s3'][0]:.2f}x its throughput; "
          f"verify from s3 {pr / res['s3'][1]:.2f}x s3cmd get|zstd -d|mbstream")
    rl, rs, px = (statistics.median(restores["local"]), statistics.median(restores["s3"]),
                  statistics.median(peer_x))
    print(f"restore (fetch, check, decrypt, extract, prepare): from the directory {rl:.2f} s "
          f"({mb / rl:.1f} MiB/s), from the bucket {rs:.2f} s ({mb / rs:.1f} MiB/s): "
          f"{rs / rl:.2f}x the directory's time; s3cmd get|zstd -d|mbstream -x + prepare "
          f"{px:.2f} s: haagent from the bucket is {px / rs:.2f}x its throughput")
    print(f"a second repository costs the backup {res['directory + s3'][0] / tb:.2f}x its "
          f"duration; its copy lands {res['directory + s3'][2]:.1f} s after the backup ends")


if __name__ == "__main__":
    main()
