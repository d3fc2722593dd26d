#!/usr/bin/env bash
# Install everything haagent needs to build, test and run its sandbox on Debian 12 (bookworm).
# Run as root. Idempotent: a second run changes nothing.
#
# libraft 0.22 comes from bookworm-backports (bookworm's 0.15.0 lacks a Raft safety fix). The
# backports suite is enabled by reusing the mirror URI already configured for the main archive;
# no host name is written here.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (it uses apt-get)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/debian.sources
bp=/etc/apt/sources.list.d/haagent-backports.sources

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	if [ ! -r "$src" ]; then
		echo "install-deps: $src not found; enable bookworm-backports by hand and re-run" >&2
		exit 1
	fi
	# The URI of the stanza that carries the main 'bookworm' suite.
	uri=$(awk '
		/^URIs:/ { u = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print u; exit } }
	' "$src")
	if [ -z "$uri" ]; then
		echo "install-deps: no bookworm URI in $src; enable bookworm-backports by hand" >&2
		exit 1
	fi
	keyring=$(awk '/^Signed-By:/ { print $2; exit }' "$src")
	{
		echo "Types: deb"
		echo "URIs: $uri"
		echo "Suites: bookworm-backports"
		echo "Components: main"
		[ -n "$keyring" ] && echo "Signed-By: $keyring"
	} >"$bp"
	echo "install-deps: enabled bookworm-backports from $uri"
fi

stamp=/var/lib/apt/periodic/haagent-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$bp" -newer "$stamp" 2>/dev/null)" ] ||
	[ -z "$(find "$stamp" -mmin -360 2>/dev/null)" ]; then
	apt-get update -q
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi

apt-get install -y -q --no-install-recommends \
	build-essential cmake pkg-config git ca-certificates \
	libuv1-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev \
	default-libmysqlclient-dev libcmocka-dev libssl-dev libzstd-dev libinih-dev \
	mariadb-server mariadb-client mariadb-backup \
	iproute2 procps psmisc python3 python3-pymysql python3-prometheus-client nftables clang-format \
	haproxy mydumper sysbench zstd curl \
	ceph-mon ceph-osd radosgw # a real S3 server on loopback: deploy/radosgw.sh

apt-get install -y -q --no-install-recommends -t bookworm-backports libraft-dev

v=$(dpkg-query -W -f='${Version}' libraft-dev)
case "$v" in
	0.1[0-9]* | 0.2[01]*)
		echo "install-deps: libraft-dev $v is too old; need 0.22.x from bookworm-backports" >&2
		exit 1
		;;
esac

# The distribution's mariadb service is not used by haagent's sandbox; leave it as the admin had it.
echo "install-deps: ok (libraft-dev $v)"
