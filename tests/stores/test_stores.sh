#!/usr/bin/env bash
#  test_stores.sh - checks deploy/local/stores.sh and free-port.sh on throwaway stores:
#  start, idempotent start, port mismatch refused, env, crash leftovers, stop.
#  usage: tests/stores/test_stores.sh     (exit 0 when every check passed)
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
stores=$root/deploy/local/stores.sh
dir=$(mktemp -d /tmp/finestra-test-stores.XXXXXX)
failures=0

check () {      # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@" >>"$dir/test.log" 2>&1; then
        echo "ok   - $what"
    else
        echo "FAIL - $what (log: $dir/test.log)"
        failures=$((failures + 1))
    fi
}
fails () { ! "$@"; }
cleanup () {
    "$stores" stop "$dir" >>"$dir/test.log" 2>&1 || true
    [ $failures -gt 0 ] || rm -rf "$dir"
}
trap cleanup EXIT

read -r pg redis < <("$root/deploy/local/free-port.sh" 2 | xargs)
check "free-port.sh gives two distinct ports" test -n "$pg" -a -n "$redis" -a "$pg" != "$redis"

check "start" "$stores" start "$dir" "$pg" "$redis"
check "PostgreSQL answers as finestra on 127.0.0.1" \
    bash -c "[ \"\$(/usr/lib/postgresql/15/bin/psql -X -h 127.0.0.1 -p $pg -U finestra -d finestra -tAc 'SELECT current_user')\" = finestra ]"
check "PostgreSQL is durable (fsync, synchronous_commit)" \
    bash -c "[ \"\$(/usr/lib/postgresql/15/bin/psql -X -h 127.0.0.1 -p $pg -U finestra -d finestra -tAc \"SELECT current_setting('fsync') || current_setting('synchronous_commit')\")\" = onon ]"
check "Redis answers, append-only" \
    bash -c "[ \"\$(redis-cli -h 127.0.0.1 -p $redis config get appendonly | tail -1)\" = yes ]"
check "start again: nothing to do, success" "$stores" start "$dir" "$pg" "$redis"
check "start on other ports while running: refused" fails "$stores" start "$dir" "$pg" $((redis + 1))
check "env prints both URLs" \
    bash -c "\"$stores\" env \"$dir\" $pg $redis | grep -qx 'FINESTRA_PG_URL=postgresql://finestra@127.0.0.1:$pg/finestra' && \"$stores\" env \"$dir\" $pg $redis | grep -qx 'FINESTRA_REDIS_URL=redis://127.0.0.1:$redis/0'"
check "bad usage exits 2" bash -c "\"$stores\" start \"$dir\" $pg; [ \$? -eq 2 ]"

#  A crash: both killed, pidfiles left behind
kill -9 "$(head -1 "$dir/pg/data/postmaster.pid")" "$(cat "$dir/redis.pid")"
check "start after a crash (stale pidfiles)" "$stores" start "$dir" "$pg" "$redis"
check "Redis answers after the crash" bash -c "[ \"\$(redis-cli -h 127.0.0.1 -p $redis ping)\" = PONG ]"

check "stop" "$stores" stop "$dir"
check "PostgreSQL stopped" fails /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p "$pg"
check "Redis stopped" fails redis-cli -h 127.0.0.1 -p "$redis" ping
check "stop again: nothing to do, success" "$stores" stop "$dir"

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
