#!/usr/bin/env bash
# Runs a three-node sandbox whose agents run under valgrind memcheck, exercises it (status,
# redirects, a stopped mariadbd, hostile RPC input, a failover and rejoin, a switchover,
# maintenance, pause, the HTTP endpoints with hostile input, backups, leader loss and restart,
# SIGTERM shutdown), and
# fails if valgrind reports any error or leak in any agent. Slow (a minute or two); not in ctest.
#
#   tests/valgrind/run.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
work=$(mktemp -d /tmp/haagent-vg-XXXXXX)
sb=(bash "$repo/deploy/sandbox.sh" --dir "$work/sb" --first 61)
cleanup() { HAAGENTD="$work/haagentd" "${sb[@]}" destroy >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${HA_VG_KEEP:-}" ] && trap - EXIT

cat >"$work/haagentd" <<WRAP
#!/bin/sh
exec valgrind --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --suppressions=$here/libraft.supp \
  --log-file=$work/vg.%p.log $build/haagentd "\$@"
WRAP
chmod +x "$work/haagentd"
export HAAGENTD=$work/haagentd HAADM=$build/haadm

"${sb[@]}" up >/dev/null
"$HAADM" -a 127.0.0.63:7200 status >/dev/null
/usr/bin/python3 - <<'PY'
import socket, struct
for payload in (b"garbage\r\n\r\n", b"HA\x01\x01" + struct.pack(">I", 0xFFFFFFFF),
                b"HA\x01\x01" + struct.pack(">I", 4) + b"\xff\xff\xff\xff"):
    s = socket.create_connection(("127.0.0.61", 7200), timeout=3)
    s.sendall(payload)
    try:
        s.recv(10)
    except OSError:
        pass
    s.close()
PY
kill -STOP "$(cat "$work/sb/node2/mariadbd.pid")"; sleep 3
kill -CONT "$(cat "$work/sb/node2/mariadbd.pid")"
# an automatic failover (fence, promote, repoint) and the old primary's rejoin
kill -KILL "$(cat "$work/sb/node1/mariadbd.pid")"
for i in $(seq 1 100); do
	p=$("$HAADM" -c "$work/sb/node2/haagent.conf" status --json 2>/dev/null | sed -n 's/^  "primary": "\(node[0-9]\)",/\1/p' || true)
	[ -n "$p" ] && [ "$p" != node1 ] && break
	sleep 0.2
done
[ -n "$p" ] && [ "$p" != node1 ] || { echo "valgrind: no failover under memcheck" >&2; exit 1; }
"${sb[@]}" up >/dev/null
# a planned switchover, maintenance, pause; the HTTP endpoints, hostile HTTP input; a backup
c2="$work/sb/node2/haagent.conf"
"$HAADM" -c "$c2" failover --timeout 30000 >/dev/null || true
"$HAADM" -c "$c2" node maintenance node3 on >/dev/null || true
"$HAADM" -c "$c2" node maintenance node3 off >/dev/null || true
"$HAADM" -c "$c2" pause --reason valgrind >/dev/null || true
"$HAADM" -c "$c2" resume >/dev/null || true
/usr/bin/python3 - <<'PY'
import socket
for n in (61, 62, 63):
    for req in (b"GET /primary HTTP/1.0\r\n\r\n", b"GET /metrics HTTP/1.0\r\n\r\n",
                b"GET /health HTTP/1.0\r\n\r\n", b"GET /replica?max_lag=x HTTP/1.0\r\n\r\n",
                b"POST / HTTP/1.0\r\n\r\n", b"\x00" * 5000, b"GET /pri"):
        s = socket.create_connection((f"127.0.0.{n}", 7300), timeout=10)
        s.sendall(req)
        try:
            s.recv(65536)
        except OSError:
            pass
        s.close()
PY
"$HAADM" -c "$c2" backup run --wait >/dev/null || { echo "valgrind: backup failed" >&2; exit 1; }
"$HAADM" -c "$c2" backup run --type incremental --wait >/dev/null || { echo "valgrind: incremental failed" >&2; exit 1; }
leader=$("$HAADM" -c "$work/sb/node1/haagent.conf" status --json | sed -n 's/^  "leader": "node\(.\)",/\1/p')
kill -TERM "$(cat "$work/sb/node$leader/agent.pid")"; sleep 3
"${sb[@]}" up >/dev/null
"${sb[@]}" stop >/dev/null
sleep 1
bad=0
for f in "$work"/vg.*.log; do
	# a child the agent forked to exec something else (mariadb-backup, a hook) leaves a log
	# with no summary; its parent is one of the agents under valgrind
	parent=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\)$/\1/p' "$f")
	if ! grep -q "ERROR SUMMARY" "$f" && [ -n "$parent" ] && [ -e "$work/vg.$parent.log" ]; then
		continue
	fi
	if ! grep -q "ERROR SUMMARY: 0 errors" "$f"; then
		bad=1
		echo "== $f"; grep -A20 "^==[0-9]*== [A-Z]" "$f" | head -60
	fi
done
n=$(grep -l "ERROR SUMMARY" "$work"/vg.*.log | wc -l)
if [ "$bad" = 0 ]; then echo "valgrind: $n agent runs, 0 errors, 0 leaks"; else exit 1; fi
