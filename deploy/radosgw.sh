#!/usr/bin/env bash
# A real S3 server on this machine: Ceph's radosgw over one monitor and one memstore OSD (no
# manager), on loopback. It checks SigV4 signatures and multipart rules like S3, so haagent's S3
# repository is tested against it (issue 14), and users can try S3 repositories without a cloud.
#
#   deploy/radosgw.sh start    create (first time) and start; prints the endpoint and the keys
#   deploy/radosgw.sh status   exit 0 when the endpoint answers
#   deploy/radosgw.sh stop     stop the daemons; memstore keeps nothing, so the next start
#                              makes a fresh, empty server with new keys
#   deploy/radosgw.sh destroy  stop and remove the directory
#   deploy/radosgw.sh env      print S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY (eval "$(...)")
#
# Options (before the command):
#   --dir DIR     ./radosgw under the repository ($HA_RGW_DIR)
#   --ip IP       127.0.0.1 (a loopback address)
#   --port P      7480: the S3 endpoint; the monitor listens on P+1
#
# Packages: ceph-mon ceph-osd radosgw (deploy/install-deps.sh). Runs as root. Every daemon's
# pid is kept in DIR and only those are stopped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
dir=${HA_RGW_DIR:-$repo/radosgw}
ip=127.0.0.1
port=7480

die() { echo "radosgw: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--ip) ip=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
cmd=${1:-}
[ -n "$cmd" ] || die "no command (see --help)"
case "$ip" in 127.*) ;; *) die "--ip must be a loopback address (127.0.0.0/8)" ;; esac
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
conf=$dir/ceph.conf
mon_port=$((port + 1))
endpoint=http://$ip:$port

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_bins() {
	local b
	for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool; do
		command -v "$b" >/dev/null || die "$b not found; run deploy/install-deps.sh"
	done
}

write_conf() {
	local fsid=$1
	cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = v1:$ip:$mon_port
ms_bind_msgr2 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
mon_max_pg_per_osd = 1000
run_dir = $dir/run
log_file = $dir/log/\$name.log
admin_socket = $dir/run/\$name.asok
keyring = $dir/keyring

[mon.a]
mon_data = $dir/mon

[osd.0]
osd_data = $dir/osd
osd_journal = $dir/osd/journal

[client.rgw.a]
rgw_frontends = beast endpoint=$ip:$port
rgw_data = $dir/rgw
rgw_dns_name = $ip
CONF
}

create() {
	local fsid
	fsid=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$dir"/{run,log,mon,osd,rgw}
	write_conf "$fsid"
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:$ip:$mon_port]" "$dir/monmap" >/dev/null
	ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >/dev/null 2>&1 ||
		die "ceph-mon --mkfs failed (see $dir/log)"
	touch "$dir/.created"
}

start_daemons() {
	local i
	if ! alive "$dir/mon.pid"; then
		ceph-mon -c "$conf" -i a --pid-file "$dir/mon.pid" ||
			die "ceph-mon did not start (see $dir/log/mon.a.log)"
	fi
	for i in $(seq 1 100); do
		timeout 5 ceph -c "$conf" mon stat >/dev/null 2>&1 && break
		sleep 0.2
	done
	if [ ! -e "$dir/osd/.made" ]; then
		ceph -c "$conf" osd create >/dev/null
		ceph-osd -c "$conf" -i 0 --mkfs >/dev/null 2>&1 || die "ceph-osd --mkfs failed"
		touch "$dir/osd/.made"
	fi
	if ! alive "$dir/osd.pid" &&
		! ceph-osd -c "$conf" -i 0 --pid-file "$dir/osd.pid" 2>>"$dir/log/osd.stderr"; then
		local why
		why=$(tail -n 5 "$dir/log/osd.stderr" "$dir/log/osd.0.log" 2>/dev/null |
			tr '\n' ' ' | cut -c1-1500)
		# Seen twice in CI out of ~100 starts, never reproduced in 15 here: the monitor
		# answered the OSD's first command with "wrong fsid". The store is in memory
		# anyway: the whole cluster is made anew, once.
		if [ -z "${HA_RGW_REMADE:-}" ]; then
			echo "radosgw: ceph-osd did not start ($why); making the cluster anew" >&2
			stop_daemons
			rm -rf "$dir"
			HA_RGW_REMADE=1 exec bash "${BASH_SOURCE[0]}" --dir "$dir" --ip "$ip" \
				--port "$port" start
		fi
		die "ceph-osd did not start: $why"
	fi
	for i in $(seq 1 150); do
		timeout 5 ceph -c "$conf" osd stat 2>/dev/null | grep -q "1 up" && break
		sleep 0.2
	done
	if ! alive "$dir/rgw.pid"; then
		radosgw -c "$conf" -n client.rgw.a --pid-file "$dir/rgw.pid" ||
			die "radosgw did not start (see $dir/log/client.rgw.a.log)"
	fi
	for i in $(seq 1 300); do
		curl -s -o /dev/null "$endpoint" && break
		sleep 0.2
	done
	curl -s -o /dev/null "$endpoint" || die "radosgw does not answer on $endpoint (see $dir/log)"
	if [ ! -s "$dir/s3.keys" ]; then
		local ak sk
		ak=$(head -c 90 /dev/urandom | base64 | tr -dc 'A-Z0-9' | head -c 20)
		sk=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
		radosgw-admin -c "$conf" -n client.rgw.a user create --uid=haagent --display-name=haagent \
			--access-key="$ak" --secret="$sk" >/dev/null 2>&1 ||
			die "radosgw-admin user create failed"
		(umask 077 && printf 'access_key = %s\nsecret_key = %s\n' "$ak" "$sk" >"$dir/s3.keys")
	fi
}

stop_daemons() {
	local p i
	for p in rgw osd mon; do
		alive "$dir/$p.pid" || continue
		kill -TERM "$(cat "$dir/$p.pid")" 2>/dev/null || true
		for i in $(seq 1 50); do alive "$dir/$p.pid" || break; sleep 0.1; done
		alive "$dir/$p.pid" && kill -KILL "$(cat "$dir/$p.pid")" 2>/dev/null || true
		rm -f "$dir/$p.pid"
	done
	# memstore keeps no object across a restart, and the monitor would remember pools whose
	# data is gone: the next start makes the whole cluster anew (new keys too)
	rm -f "$dir/.created"
}

keys() { sed -n "s/^$1 = //p" "$dir/s3.keys"; }

case "$cmd" in
start)
	need_bins
	[ -e "$dir/.created" ] || { rm -rf "$dir"; create; }
	start_daemons
	echo "radosgw: up at $endpoint (access key $(keys access_key); keys in $dir/s3.keys)"
	;;
status)
	curl -s -o /dev/null "$endpoint" && echo "radosgw: answering at $endpoint" ||
		{ echo "radosgw: not answering at $endpoint"; exit 1; }
	;;
env)
	[ -s "$dir/s3.keys" ] || die "not started (no $dir/s3.keys)"
	echo "S3_ENDPOINT=$endpoint S3_ACCESS_KEY=$(keys access_key) S3_SECRET_KEY=$(keys secret_key)"
	;;
stop)
	stop_daemons
	;;
destroy)
	stop_daemons
	rm -rf "$dir"
	echo "radosgw: removed $dir"
	;;
*) die "unknown command $cmd (see --help)" ;;
esac
