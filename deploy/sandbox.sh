#!/usr/bin/env bash
# A local three-node haagent cluster on this machine: three real mariadbd (node1 primary, node2 and
# node3 GTID replicas) and three haagentd, each node on its own loopback address.
#
#   deploy/sandbox.sh up        create (first time) and start everything, print `haadm status`
#   deploy/sandbox.sh status    haadm status (extra arguments are passed on, e.g. --json)
#   deploy/sandbox.sh stop      stop the agents and the databases, keep the data
#   deploy/sandbox.sh destroy   stop and remove the sandbox directory
#   deploy/sandbox.sh env       print shell variables for the sandbox (eval "$(... env)")
#   deploy/sandbox.sh sql N SQL run SQL on node N as root (over its socket)
#   deploy/sandbox.sh start-db N start node N's mariadbd only (not its agent)
#   deploy/sandbox.sh stop-db N  stop node N's mariadbd only (a clean shutdown)
#   deploy/sandbox.sh start-agent N   start node N's agent only
#   deploy/sandbox.sh add-node N      prepare a new node N (N > 3: an empty mariadbd, its
#                               certificate, an agent with [cluster] join = yes) and start it;
#                               then `haadm node add nodeN ...` (printed) adds it
#
# Options (before the command), with defaults:
#   --dir DIR        ./sandbox under the repository      ($HA_SANDBOX_DIR)
#   --net PREFIX     127.0.0.                            node N gets PREFIX(FIRST+N-1)
#   --first N        11                                  so 127.0.0.11, .12, .13
#   --db-port P      3306                                mariadbd port on each node address
#   --raft-port P    7100
#   --rpc-port P     7200
#   --snapshot-threshold N   raft snapshot threshold written to the configs (default: agent's)
#   --insecure       no TLS: [tls] insecure = yes in the configs (benchmarks compare the two)
#
# TLS is on by default: `up` creates a cluster CA and certificates under DIR/tls with
# `haadm cert cluster` (a node certificate per node; operators admin and monitor, the
# monitor's also as monitor.pem for haproxy), and every config names them (docs/security.md).
#
# Environment: HA_SANDBOX_DB_PASSWORD and HA_SANDBOX_REPL_PASSWORD, when set, are the agent's and
# the replication user's passwords (one line each, any other character: quotes, backslashes, '#',
# spaces, non-ASCII), used when the sandbox is created; otherwise random ones.
#
# Idempotent: `up` on a running sandbox changes nothing; on a stopped one it starts it again.
# Fails clearly on a missing binary or a port already in use. Runs as root (mariadbd --user=root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
dir=${HA_SANDBOX_DIR:-$repo/sandbox}
net=127.0.0.
first=11
db_port=3306
raft_port=7100
rpc_port=7200
nodes=3
snapshot_threshold=
insecure=${HA_SANDBOX_INSECURE:-}

die() { echo "sandbox: $*" >&2; exit 1; }

# the passwords to create with, if given; out of the environment at once, so that nothing the
# sandbox starts (mariadbd, the agents, their tools) inherits them
db_password=${HA_SANDBOX_DB_PASSWORD:-}
repl_password=${HA_SANDBOX_REPL_PASSWORD:-}
unset HA_SANDBOX_DB_PASSWORD HA_SANDBOX_REPL_PASSWORD

while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--net) net=$2; shift 2 ;;
	--first) first=$2; shift 2 ;;
	--db-port) db_port=$2; shift 2 ;;
	--raft-port) raft_port=$2; shift 2 ;;
	--rpc-port) rpc_port=$2; shift 2 ;;
	--snapshot-threshold) snapshot_threshold=$2; shift 2 ;;
	--insecure) insecure=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
cmd=${1:-}
[ -n "$cmd" ] || die "no command (see --help)"
shift || true
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")

haagentd=${HAAGENTD:-$repo/build/haagentd}
haadm=${HAADM:-$repo/build/haadm}

ip_of() { echo "$net$((first + $1 - 1))"; }
ndir() { echo "$dir/node$1"; }
conf_of() { echo "$dir/node$1/haagent.conf"; }

alive() { # pidfile: the process exists, is not a zombie, and is a haagentd or mariadbd
	local pid state
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	[ -r "/proc/$pid/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ "$state" != Z ] || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -Eq 'haagentd|mariadbd'
}

sql() { # node sql...
	local n=$1; shift
	mariadb --no-defaults -uroot --socket="$(ndir "$n")/mariadbd.sock" --connect-timeout=5 -N -B -e "$*"
}

sql_in() { # node: runs the SQL read from stdin (never in argv, where ps shows it: it may hold a
	# password); utf8mb4, so that a password's bytes reach the server as they are
	mariadb --no-defaults -uroot --socket="$(ndir "$1")/mariadbd.sock" --connect-timeout=5 \
		--default-character-set=utf8mb4 -N -B
}

sql_string() { # value -> a SQL string literal for the default sql_mode ('' for a quote, a doubled backslash)
	local v=$1
	v=${v//\\/\\\\}
	v=${v//\'/\'\'}
	printf "'%s'" "$v"
}

write_password() { # file value: the value (or a random password when it is empty) as the file's
	# first line, mode 0600
	local f=$1 v=$2
	[ -s "$f" ] && return 0
	case "$v" in *$'\n'* | *$'\r'*) die "a password must be one line" ;; esac
	if [ -n "$v" ]; then
		printf '%s\n' "$v" >"$f"
	else
		head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f"
	fi
}

need_bins() {
	local b
	for b in mariadbd mariadb-install-db mariadb mariadb-admin; do
		command -v "$b" >/dev/null || die "$b not found; run deploy/install-deps.sh"
	done
	[ -x "$haagentd" ] || die "$haagentd not found; build first (cmake -B build && cmake --build build) or set HAAGENTD"
	[ -x "$haadm" ] || die "$haadm not found; build first or set HAADM"
}

# Starts a node's process in the background. With HA_SANDBOX_CGROUP=PREFIX (a path in a cgroup v2
# hierarchy; tests use it to inject network faults), node N's processes start inside PREFIX-nodeN,
# so that every socket they open belongs to that cgroup.
launch() { # node command...
	local n=$1
	shift
	if [ -n "${HA_SANDBOX_CGROUP:-}" ]; then
		mkdir -p "$HA_SANDBOX_CGROUP-node$n"
		setsid sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$HA_SANDBOX_CGROUP-node$n" "$@" &
	else
		setsid "$@" &
	fi
}

port_busy() { # ip port -> 0 when something listens there
	ss -Hltn "src $1:$2" 2>/dev/null | grep -q .
}

write_node_files() {
	local n=$1 ip d
	ip=$(ip_of "$n")
	d=$(ndir "$n")
	mkdir -p "$d/data" "$d/tmp" "$d/agent"
	cat >"$d/my.cnf" <<CNF
[mariadbd]
user=root
datadir=$d/data
tmpdir=$d/tmp
socket=$d/mariadbd.sock
pid-file=$d/mariadbd.pid
log-error=$d/mariadbd.err
bind-address=$ip
port=$db_port
server-id=$n
gtid-domain-id=0
log-bin=mariadb-bin
log-slave-updates=ON
binlog-format=ROW
gtid-strict-mode=ON
sync-binlog=1
innodb-flush-log-at-trx-commit=1
read-only=ON
skip-name-resolve=ON
performance-schema=OFF
innodb-buffer-pool-size=64M
innodb-log-file-size=32M
max-connections=200
slave-net-timeout=4
# Semi-sync: every node can acknowledge as a replica; the agent enables the master side on the
# primary only (with a timeout above its write lease) and disables it when fencing.
rpl-semi-sync-master-enabled=OFF
rpl-semi-sync-slave-enabled=ON
rpl-semi-sync-master-wait-point=AFTER_SYNC
# STOP SLAVE on a semi-sync replica first connects to the master to kill its dump thread; with
# the master unreachable (a partition, a dead host) that waits for this timeout, which delays
# repointing the replicas and therefore the new primary's first acknowledged write.
rpl-semi-sync-slave-kill-conn-timeout=1
# A crashed primary restarts as a semi-sync replica: binlog recovery drops transactions that no
# replica acknowledged (MDEV-21117), so it can rejoin instead of being diverged.
init-rpl-role=SLAVE
CNF
}

write_agent_conf() { # node [join]: with join, [cluster] join = yes, and the first three nodes
	# as seeds besides itself
	local n=$1 join=${2:-} d i list
	d=$(ndir "$n")
	list=$(seq 1 $nodes)
	[ -n "$join" ] && list="$list $n"
	{
		echo "# haagent sandbox config for node$n (generated by deploy/sandbox.sh)"
		echo "[cluster]"
		echo "name = sandbox"
		[ -n "$join" ] && echo "join = yes"
		echo
		echo "[agent]"
		echo "node = node$n"
		echo "data_dir = $d/agent"
		echo "db_user = haagent"
		echo "db_password_file = $dir/haagent.password"
		echo "repl_user = repl"
		echo "repl_password_file = $dir/repl.password"
		echo "db_datadir = $d/data"
		echo "db_stop_command = bash $here/sandbox.sh $(opts) stop-db $n"
		echo "db_start_command = bash $here/sandbox.sh $(opts) start-db $n"
		echo "db_pid_file = $d/mariadbd.pid"
		echo
		echo "[backup]"
		echo "key_file = $dir/backup.key"
		echo
		echo "[repository local]"
		echo "type = dir"
		echo "path = $dir/backups"
		echo
		echo "[tls]"
		if [ -n "$insecure" ]; then
			echo "insecure = yes"
		else
			echo "ca = $dir/tls/ca.crt"
			echo "cert = $dir/tls/node$n.crt"
			echo "key = $dir/tls/node$n.key"
			echo "haadm_cert = $dir/tls/admin.crt"
			echo "haadm_key = $dir/tls/admin.key"
		fi
		echo
		if [ -n "$snapshot_threshold" ]; then
			echo "[raft]"
			echo "snapshot_threshold = $snapshot_threshold"
			echo "snapshot_trailing = 2"
			echo
		fi
		for i in $list; do
			echo "[node node$i]"
			echo "id = $i"
			echo "address = $(ip_of "$i")"
			echo "raft_port = $raft_port"
			echo "rpc_port = $rpc_port"
			echo "db_port = $db_port"
			echo
		done
	} >"$(conf_of "$n")"
}

opts() { # the options that name this sandbox, for commands written into its configs
	printf -- '--dir %s --net %s --first %s --db-port %s --raft-port %s --rpc-port %s%s' \
		"$dir" "$net" "$first" "$db_port" "$raft_port" "$rpc_port" "${insecure:+ --insecure}"
}

gone_or_kill() { # pidfile tenths: waits that long for the process to end, then SIGKILL;
	# fails if it is still there 5 s after that
	local i
	for i in $(seq 1 "$2"); do alive "$1" || return 0; sleep 0.1; done
	kill -KILL "$(cat "$1")" 2>/dev/null || true
	for i in $(seq 1 50); do alive "$1" || return 0; sleep 0.1; done
	return 1
}

stop_db() { # node: SIGTERM (a clean shutdown), SIGKILL after 60 s
	local d
	d=$(ndir "$1")
	alive "$d/mariadbd.pid" || return 0
	kill -TERM "$(cat "$d/mariadbd.pid")" 2>/dev/null || true
	gone_or_kill "$d/mariadbd.pid" 600 || die "mariadbd of node$1 did not stop"
}

start_db() {
	local n=$1 d ip i
	d=$(ndir "$n")
	ip=$(ip_of "$n")
	if alive "$d/mariadbd.pid"; then return 0; fi
	port_busy "$ip" "$db_port" && die "port $ip:$db_port is already in use (by another process); choose --db-port or --net"
	launch "$n" mariadbd --defaults-file="$d/my.cnf" </dev/null >>"$d/mariadbd.out" 2>&1
	for i in $(seq 1 150); do
		if mariadb-admin --no-defaults -uroot --socket="$d/mariadbd.sock" --connect-timeout=1 ping >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	tail -20 "$d/mariadbd.err" >&2 || true
	die "mariadbd of node$n did not start (see $d/mariadbd.err)"
}

make_certs() { # the cluster CA, a certificate per node, operators admin and monitor
	[ -n "$insecure" ] && return 0
	"$haadm" cert cluster --dir "$dir/tls" -c "$(conf_of 1)" >"$dir/tls.log" 2>&1 ||
		{ cat "$dir/tls.log" >&2; die "haadm cert cluster failed"; }
	(umask 077 && cat "$dir/tls/monitor.crt" "$dir/tls/monitor.key" >"$dir/tls/monitor.pem")
}

create() {
	local tmpl=$dir/template n ip
	echo "sandbox: creating in $dir"
	mkdir -p "$dir"
	umask 077
	write_password "$dir/haagent.password" "$db_password"
	write_password "$dir/repl.password" "$repl_password"
	[ -s "$dir/backup.key" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/backup.key"
	umask 022
	chmod 600 "$dir/haagent.password" "$dir/repl.password" "$dir/backup.key"
	rm -rf "$tmpl"
	mariadb-install-db --no-defaults --user=root --datadir="$tmpl" --auth-root-authentication-method=socket \
		--skip-test-db >"$dir/install-db.log" 2>&1 || { tail -20 "$dir/install-db.log" >&2; die "mariadb-install-db failed"; }
	local hpw rpw
	IFS= read -r hpw <"$dir/haagent.password"
	IFS= read -r rpw <"$dir/repl.password"
	hpw=$(sql_string "$hpw")
	rpw=$(sql_string "$rpw")
	for n in $(seq 1 $nodes); do
		write_node_files "$n"
		cp -a "$tmpl/." "$(ndir "$n")/data/"
		write_agent_conf "$n"
	done
	rm -rf "$tmpl"
	make_certs
	for n in $(seq 1 $nodes); do
		start_db "$n"
		# Users are created on every node outside the binlog, so each node's GTID history starts
		# empty and identical.
		# (the passwords quoted for SQL, on stdin)
		sql_in "$n" <<SQL
SET SESSION sql_log_bin=0;
CREATE USER 'haagent'@'${net}%' IDENTIFIED BY $hpw;
GRANT ALL PRIVILEGES ON *.* TO 'haagent'@'${net}%' WITH GRANT OPTION;
CREATE USER 'repl'@'${net}%' IDENTIFIED BY $rpw;
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'${net}%';
CREATE USER 'app'@'${net}%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES,
	LOCK TABLES ON *.* TO 'app'@'${net}%';
RESET MASTER;
SQL
	done
	ip=$(ip_of 1)
	for n in $(seq 2 $nodes); do
		sql_in "$n" <<SQL
CHANGE MASTER TO MASTER_HOST='$ip', MASTER_PORT=$db_port, MASTER_USER='repl',
	MASTER_PASSWORD=$rpw, MASTER_USE_GTID=slave_pos, MASTER_HEARTBEAT_PERIOD=0.5,
	MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
	done
	# The agents turn read_only off on the primary once they agree on it; until then the setup
	# writes as root (root bypasses read_only).
	sql 1 "CREATE DATABASE IF NOT EXISTS sandbox;
		CREATE TABLE IF NOT EXISTS sandbox.hello (id INT PRIMARY KEY, note VARCHAR(64));
		INSERT INTO sandbox.hello VALUES (1, 'created by deploy/sandbox.sh');"
	touch "$dir/.created"
}

start_agent() {
	local n=$1 d ip i
	d=$(ndir "$n")
	ip=$(ip_of "$n")
	if alive "$d/agent.pid"; then return 0; fi
	# an agent just killed may still hold its sockets for a moment after it stopped looking
	# alive (its memory goes first): wait up to 5 s before calling a port taken
	for i in $(seq 1 50); do
		port_busy "$ip" "$raft_port" || port_busy "$ip" "$rpc_port" || break
		sleep 0.1
	done
	port_busy "$ip" "$raft_port" && die "port $ip:$raft_port (raft) is already in use"
	port_busy "$ip" "$rpc_port" && die "port $ip:$rpc_port (rpc) is already in use"
	launch "$n" "$haagentd" -c "$(conf_of "$n")" </dev/null >>"$d/agent.log" 2>&1
	echo $! >"$d/agent.pid"
}

primary_of() { # prints the established primary's name, nothing while there is none
	{ "$haadm" -c "$(conf_of 1)" -t 1000 status --json 2>/dev/null || true; } |
		sed -n 's/^  "primary": "\(node[0-9]*\)",$/\1/p'
}

wait_converged() { # up to 10 s for every node to report the same GTID and fresh read_only
	local i
	for i in $(seq 1 50); do
		sleep 0.2
		{ "$haadm" -c "$(conf_of 1)" -t 1000 status --json 2>/dev/null || true; } |
			/usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
g = {n["gtid"] for n in s["nodes"]}
p = [n for n in s["nodes"] if n["name"] == s["primary"]]
sys.exit(0 if len(g) == 1 and None not in g and p and p[0]["read_only"] is False else 1)' && return 0
	done
	return 0 # status will show what is lagging
}

wait_ready() {
	local i p
	for i in $(seq 1 150); do
		p=$(primary_of)
		if [ -n "$p" ]; then
			# Every node starts read_only=ON; the primary's agent turns it off once it holds
			# its write lease.
			wait_converged
			return 0
		fi
		sleep 0.2
	done
	"$haadm" -c "$(conf_of 1)" status || true
	die "the agents did not establish a primary within 30 s (see $dir/node*/agent.log)"
}

all_nodes() { # the numbers of every node directory (the first three and any added)
	local d
	for d in "$dir"/node[0-9]*; do
		[ -d "$d" ] && echo "${d##*/node}"
	done | sort -n
}

add_node() { # N: a new, empty node that joins with `haadm node add`
	local n=$1 d ip hpw rpw
	[ "$n" -gt "$nodes" ] || die "add-node: N must be above $nodes"
	[ -e "$dir/.created" ] || die "add-node: no sandbox in $dir (run up first)"
	d=$(ndir "$n")
	ip=$(ip_of "$n")
	if [ ! -e "$d/.made" ]; then
		rm -rf "$d"
		write_node_files "$n"
		mariadb-install-db --no-defaults --user=root --datadir="$d/data" \
			--auth-root-authentication-method=socket --skip-test-db >"$d/install-db.log" 2>&1 ||
			{ tail -20 "$d/install-db.log" >&2; die "mariadb-install-db failed"; }
		write_agent_conf "$n" join
		if [ -z "$insecure" ]; then
			"$haadm" cert node "node$n" --id "$n" --address "$ip" --dir "$dir/tls" \
				>"$d/cert.log" 2>&1 || { cat "$d/cert.log" >&2; die "haadm cert node failed"; }
		fi
		start_db "$n"
		IFS= read -r hpw <"$dir/haagent.password"
		IFS= read -r rpw <"$dir/repl.password"
		hpw=$(sql_string "$hpw")
		rpw=$(sql_string "$rpw")
		sql_in "$n" <<SQL
SET SESSION sql_log_bin=0;
CREATE USER 'haagent'@'${net}%' IDENTIFIED BY $hpw;
GRANT ALL PRIVILEGES ON *.* TO 'haagent'@'${net}%' WITH GRANT OPTION;
RESET MASTER;
SQL
		touch "$d/.made"
	fi
	start_db "$n"
	start_agent "$n"
	echo "sandbox: node$n prepared and its agent started (joining). Add it with:"
	echo "  $haadm -c $(conf_of 1) node add node$n --address $ip --id $n --raft-port $raft_port --rpc-port $rpc_port --db-port $db_port"
}

stop_all() {
	local n d pid
	for n in $(all_nodes); do
		d=$(ndir "$n")
		if alive "$d/agent.pid"; then kill -TERM "$(cat "$d/agent.pid")" 2>/dev/null || true; fi
	done
	for n in $(all_nodes); do
		d=$(ndir "$n")
		if alive "$d/mariadbd.pid"; then kill -TERM "$(cat "$d/mariadbd.pid")" 2>/dev/null || true; fi
	done
	for n in $(all_nodes); do
		d=$(ndir "$n")
		for pid in "$d/agent.pid" "$d/mariadbd.pid"; do
			gone_or_kill "$pid" 100 || true
		done
		rm -f "$d/agent.pid"
	done
}

case "$cmd" in
up)
	need_bins
	[ "$(id -u)" -eq 0 ] || die "run as root (mariadbd runs with --user=root here)"
	[ -e "$dir/.created" ] || { rm -rf "$dir"; create; }
	for n in $(all_nodes); do start_db "$n"; done
	for n in $(all_nodes); do start_agent "$n"; done
	wait_ready
	"$haadm" -c "$(conf_of 1)" status
	echo
	echo "sandbox: up. Try: $haadm -c $(conf_of 1) status --json"
	echo "         or:  mariadb -h $(ip_of 1) -P $db_port -uapp -papp sandbox"
	;;
status)
	exec "$haadm" -c "$(conf_of 1)" status "$@"
	;;
stop)
	stop_all
	echo "sandbox: stopped ($dir kept)"
	;;
destroy)
	stop_all
	rm -rf "$dir"
	echo "sandbox: removed $dir"
	;;
env)
	echo "HA_SANDBOX_DIR=$dir"
	for n in $(all_nodes); do
		echo "NODE${n}_IP=$(ip_of "$n") NODE${n}_CONF=$(conf_of "$n") NODE${n}_DIR=$(ndir "$n")"
	done
	echo "DB_PORT=$db_port RAFT_PORT=$raft_port RPC_PORT=$rpc_port"
	if [ -z "$insecure" ]; then # haadm -a HOST:PORT finds its credentials here
		echo "export HAADM_CA=$dir/tls/ca.crt HAADM_CERT=$dir/tls/admin.crt HAADM_KEY=$dir/tls/admin.key"
	fi
	;;
start-db)
	[ $# -ge 1 ] || die "usage: start-db N"
	start_db "$1"
	;;
stop-db)
	[ $# -ge 1 ] || die "usage: stop-db N"
	stop_db "$1"
	;;
start-agent)
	[ $# -ge 1 ] || die "usage: start-agent N"
	need_bins
	start_agent "$1"
	;;
add-node)
	[ $# -ge 1 ] || die "usage: add-node N"
	need_bins
	add_node "$1"
	;;
sql)
	[ $# -ge 2 ] || die "usage: sql N 'SQL'"
	n=$1; shift
	sql "$n" "$*"
	;;
*)
	die "unknown command '$cmd' (see --help)"
	;;
esac
