#!/bin/sh
# Docker's bridge on the vxtap overlay: the --bip/--mtu/--ip-masq settings from the
# subnet.env that `vxtap up` (etcd mode) writes, as flannel's mk-docker-opts.sh
# derives them. Reads the file without sourcing it; prints to stdout, or writes
# FILE atomically with --out.
#
#   docker-vxtap-env.sh [--subnet-file FILE] [--format daemon-json|docker-opts]
#                       [--out FILE] [--wait SECONDS]
#
#   daemon-json (default): /etc/docker/daemon.json content
#       {"bip": "198.19.5.1/24", "mtu": 1450, "ip-masq": true}
#   docker-opts: one line for a systemd EnvironmentFile
#       DOCKER_OPTS="--bip=198.19.5.1/24 --mtu=1450 --ip-masq=true"
#
# ip-masq is the opposite of FLANNEL_IPMASQ: true there means the network daemon
# masquerades traffic leaving the overlay already, so Docker must not.
# Exit status: 0 done, 1 subnet.env missing (after --wait) or invalid, 2 usage.
set -eu

subnet_file=/run/vxtap/subnet.env
format=daemon-json
out=
wait_s=0

usage() {
	echo "usage: $0 [--subnet-file FILE] [--format daemon-json|docker-opts] [--out FILE] [--wait SECONDS]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--subnet-file) [ $# -ge 2 ] || usage; subnet_file=$2; shift 2 ;;
	--format) [ $# -ge 2 ] || usage; format=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--wait) [ $# -ge 2 ] || usage; wait_s=$2; shift 2 ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) echo "$0: unknown argument: $1" >&2; usage ;;
	esac
done
case "$format" in daemon-json | docker-opts) ;; *) echo "$0: --format must be daemon-json or docker-opts, got '$format'" >&2; exit 2 ;; esac
case "$wait_s" in '' | *[!0-9]*) echo "$0: --wait must be a whole number of seconds, got '$wait_s'" >&2; exit 2 ;; esac

# vxtap writes subnet.env once it holds a lease: wait for it if asked.
waited=0
while [ ! -r "$subnet_file" ]; do
	if [ "$waited" -ge "$wait_s" ]; then
		echo "$0: $subnet_file: not readable (is vxtap up --etcd-endpoints ... running?)" >&2
		exit 1
	fi
	sleep 1
	waited=$((waited + 1))
done

subnet=
mtu=
ipmasq=
while IFS='=' read -r key value || [ -n "$key" ]; do
	case "$key" in
	FLANNEL_SUBNET) subnet=$value ;;
	FLANNEL_MTU) mtu=$value ;;
	FLANNEL_IPMASQ) ipmasq=$value ;;
	esac
done <"$subnet_file"

fail() {
	echo "$0: $1 in $subnet_file: $2" >&2
	exit 1
}
[ -n "$subnet" ] || fail FLANNEL_SUBNET missing
# a.b.c.d/len, digits only (Docker's --bip wants an address with its prefix length)
echo "$subnet" | grep -Eq '^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$' || fail FLANNEL_SUBNET "'$subnet' is not an IPv4 address/length"
[ -n "$mtu" ] || fail FLANNEL_MTU missing
case "$mtu" in *[!0-9]*) fail FLANNEL_MTU "'$mtu' is not a number" ;; esac
[ "$mtu" -ge 576 ] && [ "$mtu" -le 65535 ] || fail FLANNEL_MTU "$mtu is not between 576 and 65535"
case "$ipmasq" in
true) docker_masq=false ;;
false) docker_masq=true ;;
'') fail FLANNEL_IPMASQ missing ;;
*) fail FLANNEL_IPMASQ "'$ipmasq' is not true or false" ;;
esac

if [ "$format" = daemon-json ]; then
	text=$(printf '{\n  "bip": "%s",\n  "mtu": %s,\n  "ip-masq": %s\n}' "$subnet" "$mtu" "$docker_masq")
else
	text=$(printf 'DOCKER_OPTS="--bip=%s --mtu=%s --ip-masq=%s"' "$subnet" "$mtu" "$docker_masq")
fi

if [ -z "$out" ]; then
	printf '%s\n' "$text"
else
	tmp="$out.tmp.$$"
	printf '%s\n' "$text" >"$tmp"
	mv -f "$tmp" "$out"
fi
