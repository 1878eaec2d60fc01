#!/usr/bin/env bash
#  stores.sh - starts and stops a project-local PostgreSQL 15 and Redis; touches no system service.
#
#  usage:
#    stores.sh start DIR PG_PORT REDIS_PORT   start both (initdb the first time); wait until both
#                                             answer. Already running from DIR: nothing to do.
#    stores.sh stop DIR                       stop both cleanly (pg_ctl -m fast, redis SHUTDOWN)
#    stores.sh env DIR PG_PORT REDIS_PORT     print FINESTRA_PG_URL=... and FINESTRA_REDIS_URL=...
#
#  Layout under DIR:
#    pg/data          the cluster (owned by the `postgres` OS user when run as root)
#    pg/sock          its unix socket directory
#    pg/postgres.log  its log
#    redis/           Redis' working directory (append-only file)
#    redis.pid redis.log redis.port
#
#  Both listen on 127.0.0.1 only; PostgreSQL trusts 127.0.0.1 and has role and database
#  `finestra`. Exit status 0 on success, 1 on failure (with a message), 2 on bad usage.
#  Environment: FINESTRA_STORES_TIMEOUT seconds to wait for each store (default 60).
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
TIMEOUT=${FINESTRA_STORES_TIMEOUT:-60}
ME=stores.sh

say ()  { printf '%s: %s\n' "$ME" "$*" >&2; }
die ()  { say "error: $*"; exit 1; }
usage () {
    sed -n '4,8p' "$0" | sed 's/^#  //' >&2
    exit 2
}

s_port () {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] \
        || die "'$1' is not a TCP port (1-65535)"
}

#  DIR made absolute (created if missing): the socket path and the config need it.
s_dir () {
    mkdir -p "$1" || die "cannot create $1"
    (cd "$1" && pwd -P)
}

#  initdb and postgres refuse to run as root: as root we run them as `postgres`, or as a
#  system user `finestra` we create when the postgres package did not make one.
s_pg_user () {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        id finestra >/dev/null 2>&1 \
            || useradd --system --user-group --no-create-home --home-dir /nonexistent \
                       --shell /usr/sbin/nologin finestra \
            || die "no 'postgres' OS user and cannot create user 'finestra'"
        echo finestra
    fi
}

#  Runs a command as the PostgreSQL OS user.
s_as_pg () {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        setpriv --reuid="$PGUSER_OS" --regid="$PGUSER_OS" --init-groups -- "$@"
    fi
}

s_need_binaries () {
    [ -x $PGBIN/initdb ] && [ -x $PGBIN/pg_ctl ] && [ -x $PGBIN/psql ] \
        || die "PostgreSQL 15 is not installed ($PGBIN): run deploy/local/deps.sh stores"
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
        || die "Redis is not installed: run deploy/local/deps.sh stores"
}

#  True when the process lives. A zombie does not: containers whose init reaps late keep a
#  killed server's pid around, and kill -0 alone would take it for a running store.
s_alive () {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ "$state" != Z ]
}

#  ---------------------------------------------------------------- PostgreSQL

s_pg_running () {
    local pid
    pid=$(head -1 "$DIR/pg/data/postmaster.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    #  After a crash the pid may be a zombie, or after a reboot another program's: postgres
    #  would refuse to start while kill(pid, 0) succeeds, so such a file is removed here.
    if kill -0 "$pid" 2>/dev/null \
       && { ! s_alive "$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; }; then
        say "removing stale $DIR/pg/data/postmaster.pid (pid $pid is not a live PostgreSQL)"
        rm -f "$DIR/pg/data/postmaster.pid"
        return 1
    fi
    s_as_pg $PGBIN/pg_ctl status -D "$DIR/pg/data" >/dev/null 2>&1
}

#  The port a running cluster listens on (4th line of postmaster.pid).
s_pg_running_port () {
    sed -n 4p "$DIR/pg/data/postmaster.pid" 2>/dev/null || true
}

s_pg_init () {
    mkdir -p "$DIR/pg"
    #  The postgres user must be able to reach DIR; mktemp -d makes it 0700 root.
    if ! s_as_pg test -x "$DIR"; then
        chmod go+x "$DIR"
        s_as_pg test -x "$DIR" \
            || die "user '$PGUSER_OS' cannot reach $DIR (a parent directory is closed to it): use a directory under /tmp or /var"
    fi
    [ "$(stat -c %U "$DIR/pg")" = "$PGUSER_OS" ] || chown -R "$PGUSER_OS:" "$DIR/pg"
    if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
        [ ! -e "$DIR/pg/data" ] || rm -rf "$DIR/pg/data"   # a half-done earlier initdb
        #  C.UTF-8: byte-order collation (no dependence on generated locales) with Unicode
        #  case mapping, which lower()/upper() on people's names need.
        local locale=C.UTF-8
        locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8' || locale=C
        say "initdb $DIR/pg/data (as $PGUSER_OS)"
        s_as_pg $PGBIN/initdb -D "$DIR/pg/data" -U postgres --encoding=UTF8 --locale=$locale \
                --auth-local=peer --auth-host=trust >"$DIR/pg/initdb.log" 2>&1 \
            || { tail -20 "$DIR/pg/initdb.log" >&2; die "initdb failed (log: $DIR/pg/initdb.log)"; }
        echo "include_if_exists = 'finestra.conf'" >>"$DIR/pg/data/postgresql.conf"
    fi
}

#  Rewritten at every start, so the port given now is the one used.
s_pg_configure () {
    local sockdir="$DIR/pg/sock"
    mkdir -p "$sockdir"
    chown "$PGUSER_OS:" "$sockdir"
    chmod 0700 "$sockdir"
    #  sun_path holds 107 bytes; a deep DIR gets no unix socket (TCP is what we use anyway).
    if [ $(( ${#sockdir} + 16 )) -gt 107 ]; then
        say "warning: $sockdir is too long for a unix socket; PostgreSQL listens on TCP only"
        sockdir=""
    fi
    s_as_pg tee "$DIR/pg/data/finestra.conf" >/dev/null <<EOF
# Written by deploy/local/stores.sh at every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 1GB
work_mem = 8MB
maintenance_work_mem = 64MB
# Durable: a commit is on disk before it is acknowledged.
fsync = on
synchronous_commit = on
full_page_writes = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    #  Trust on 127.0.0.1 only (no other host, no IPv6); local socket by peer.
    s_as_pg tee "$DIR/pg/data/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/local/stores.sh: a local development and test cluster.
local   all   all                 peer
host    all   all   127.0.0.1/32  trust
EOF
}

s_pg_wait () {
    local deadline=$(( SECONDS + TIMEOUT ))
    until $PGBIN/pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2; do
        [ $SECONDS -lt $deadline ] \
            || die "PostgreSQL did not answer on 127.0.0.1:$PG_PORT within ${TIMEOUT}s (log: $DIR/pg/postgres.log)"
        sleep 0.2
    done
}

s_psql () {
    $PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

#  Role and database `finestra`, made at every start so a crash between initdb and here heals.
#  The role is a superuser: this cluster is a throwaway for one developer or one test run,
#  reachable from 127.0.0.1 only, and the tests create and drop databases and terminate
#  backends with it. Deployed clusters give the services an ordinary role.
s_pg_roles () {
    if [ -z "$(s_psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'finestra'")" ]; then
        s_psql -c "CREATE ROLE finestra LOGIN SUPERUSER" || die "cannot create role finestra"
    fi
    if [ -z "$(s_psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'finestra'")" ]; then
        s_psql -c "CREATE DATABASE finestra OWNER finestra" || die "cannot create database finestra"
    fi
}

s_pg_start () {
    if s_pg_running; then
        local running
        running=$(s_pg_running_port)
        [ "$running" = "$PG_PORT" ] \
            || die "PostgreSQL from $DIR already runs on port $running, not $PG_PORT: stop it first"
        say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    else
        s_pg_init
        s_pg_configure
        #  A postmaster.pid left by a crash: pg_ctl status said no server runs, and postgres
        #  itself checks the pid again before it takes the file over.
        #  Backends orphaned by a crashed postmaster hold its shared memory for a moment, and
        #  postgres refuses to start until they are gone: try again until the deadline.
        say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        local deadline=$(( SECONDS + TIMEOUT ))
        until s_as_pg $PGBIN/pg_ctl start -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w \
                      -t "$TIMEOUT" >/dev/null 2>&1 9>&-; do
            if [ $SECONDS -ge $deadline ]; then
                tail -20 "$DIR/pg/postgres.log" >&2 || true
                die "PostgreSQL did not start on 127.0.0.1:$PG_PORT (log: $DIR/pg/postgres.log)"
            fi
            say "PostgreSQL did not start yet (crash leftovers?), trying again"
            sleep 1
        done
    fi
    s_pg_wait
    s_pg_roles
}

s_pg_stop () {
    if s_pg_running; then
        say "stopping PostgreSQL"
        s_as_pg $PGBIN/pg_ctl stop -D "$DIR/pg/data" -m fast -w -t "$TIMEOUT" >/dev/null \
            || die "PostgreSQL in $DIR/pg/data did not stop within ${TIMEOUT}s"
    fi
}

#  ---------------------------------------------------------------- Redis

#  The pid in redis.pid when that process is alive and is a redis-server; else nothing.
s_redis_pid () {
    local pid
    pid=$(cat "$DIR/redis.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    s_alive "$pid" || return 0
    grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null || return 0
    echo "$pid"
}

s_redis_ping () {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

s_redis_start () {
    local pid
    pid=$(s_redis_pid)
    if [ -n "$pid" ]; then
        s_redis_ping "$REDIS_PORT" \
            || die "Redis from $DIR (pid $pid) runs but does not answer on 127.0.0.1:$REDIS_PORT (started on port $(cat "$DIR/redis.port" 2>/dev/null || echo '?')?): stop it first"
        say "Redis already running on 127.0.0.1:$REDIS_PORT"
        return
    fi
    rm -f "$DIR/redis.pid"          # stale after a crash, or absent
    mkdir -p "$DIR/redis"
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" \
                 --appendonly yes --daemonize yes \
                 --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" 9>&- \
        || die "redis-server did not start (log: $DIR/redis.log)"
    echo "$REDIS_PORT" >"$DIR/redis.port"
    local deadline=$(( SECONDS + TIMEOUT ))
    until s_redis_ping "$REDIS_PORT"; do
        if [ $SECONDS -ge $deadline ] || { [ -f "$DIR/redis.pid" ] && [ -z "$(s_redis_pid)" ]; }; then
            tail -5 "$DIR/redis.log" >&2 || true
            die "Redis did not answer on 127.0.0.1:$REDIS_PORT within ${TIMEOUT}s (log: $DIR/redis.log)"
        fi
        sleep 0.1
    done
}

s_redis_stop () {
    local pid port
    pid=$(s_redis_pid)
    [ -n "$pid" ] || { rm -f "$DIR/redis.pid"; return 0; }
    say "stopping Redis"
    port=$(cat "$DIR/redis.port" 2>/dev/null || true)
    #  SHUTDOWN flushes the append-only file; SIGTERM does the same when the port is unknown.
    if [ -z "$port" ] || ! redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    local deadline=$(( SECONDS + TIMEOUT ))
    while s_alive "$pid"; do
        [ $SECONDS -lt $deadline ] || die "Redis (pid $pid) did not stop within ${TIMEOUT}s"
        sleep 0.1
    done
    rm -f "$DIR/redis.pid"
}

#  ---------------------------------------------------------------- commands

[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
    start)
        [ $# -eq 3 ] || usage
        s_port "$2"; s_port "$3"
        [ "$2" != "$3" ] || die "PostgreSQL and Redis need different ports"
        s_need_binaries
        DIR=$(s_dir "$1") PG_PORT=$2 REDIS_PORT=$3
        PGUSER_OS=$(s_pg_user)
        #  One start or stop at a time per DIR (the servers are started with fd 9 closed,
        #  or they would hold the lock for their lifetime).
        exec 9>"$DIR/.stores.lock"
        flock -w "$TIMEOUT" 9 || die "another stores.sh holds $DIR/.stores.lock"
        s_pg_start
        s_redis_start
        say "ready: PostgreSQL 127.0.0.1:$PG_PORT, Redis 127.0.0.1:$REDIS_PORT"
        ;;
    stop)
        [ $# -eq 1 ] || usage
        [ -d "$1" ] || { say "$1 does not exist: nothing to stop"; exit 0; }
        s_need_binaries
        DIR=$(s_dir "$1")
        PGUSER_OS=$(s_pg_user)
        exec 9>"$DIR/.stores.lock"
        flock -w "$TIMEOUT" 9 || die "another stores.sh holds $DIR/.stores.lock"
        status=0
        ( s_pg_stop ) || status=1
        ( s_redis_stop ) || status=1
        exit $status
        ;;
    env)
        [ $# -eq 3 ] || usage
        s_port "$2"; s_port "$3"
        echo "FINESTRA_PG_URL=postgresql://finestra@127.0.0.1:$2/finestra"
        echo "FINESTRA_REDIS_URL=redis://127.0.0.1:$3/0"
        ;;
    -h|--help|help) usage ;;
    *) say "unknown command '$cmd'"; usage ;;
esac
