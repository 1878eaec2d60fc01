#!/usr/bin/env bash
#  deps.sh - installs the Debian 12 packages Finestra needs, only those missing.
#
#  usage: deploy/local/deps.sh [GROUP...]     GROUP: build stores tests docker (default: build)
#
#  Nothing is installed (and apt is not touched) when every package is already there.
#  Package post-install scripts must not start system services: we run our own project-local
#  PostgreSQL and Redis, and a system one would hold ports and memory for nothing. A temporary
#  /usr/sbin/policy-rc.d that exits 101 ("action forbidden") tells invoke-rc.d so.
set -euo pipefail

build=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev
       libpq-dev libmicrohttpd-dev libsodium-dev libcriterion-dev)
stores=(postgresql-15 postgresql-client-15 redis-server redis-tools)
tests=(valgrind python3 python3-zmq python3-msgpack)
docker=(docker.io docker-compose debootstrap)

say () { printf 'deps: %s\n' "$*" >&2; }

[ $# -gt 0 ] || set -- build
wanted=()
for group in "$@"; do
    case "$group" in
        build)  wanted+=("${build[@]}") ;;
        stores) wanted+=("${stores[@]}") ;;
        tests)  wanted+=("${tests[@]}") ;;
        docker) wanted+=("${docker[@]}") ;;
        *) say "unknown group '$group' (build, stores, tests, docker)"; exit 2 ;;
    esac
done

missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [ "${status:0:2}" = "ii" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "all packages present ($*)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}"
    say "installing them needs root: run this command again as root (e.g. with sudo)"
    exit 1
fi

#  Forbid service starts for the duration of the install; put back whatever was there before.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.finestra.XXXXXX)
    cp -p "$policy" "$backup"
fi
restore () {
    if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# Finestra deps.sh: no service starts during package installation\nexit 101\n' >"$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
say "installing: ${missing[*]}"
apt_opts=(-o DPkg::Lock::Timeout=300 -q)
apt-get "${apt_opts[@]}" update
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null
say "installed ${#missing[@]} package(s)"
