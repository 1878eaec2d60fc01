#!/usr/bin/env bash
# Compose smoke test: the whole suite from the images of deploy/docker, one event end to end.
#
#   tests/compose/smoke.sh
#
# 1. starts dockerd if none runs (dockerd --bridge=none --iptables=false);
# 2. makes the base image debian:bookworm-slim from Debian's mirror if it is missing
#    (deploy/docker/make-base-image.sh: debootstrap + docker import; cached);
# 3. builds the images (build network: host, from deploy/compose.hostnet.yml);
# 4. starts the stack with the host-network override under project finestra-smoke-$$;
# 5. waits until every container is healthy (FINESTRA_SMOKE_TIMEOUT, default 180 s; on
#    timeout prints the logs of the ones that are not);
# 6. runs tests/compose/e2e_check.py against it;
# 7. tears it down (down -v) whatever happened.
# Last line: "1 passed, 0 failed" or "0 passed, 1 failed"; "SKIPPED: <reason>" (exit 0)
# when this machine cannot run containers (not root, no docker, dockerd does not start).
#
# Environment: FINESTRA_SMOKE_TIMEOUT (s), FINESTRA_SMOKE_KEEP=1 (leave the stack up),
# FINESTRA_IMAGE_TAG (default smoke), FINESTRA_SMOKE_KEEP_DOCKERD=1 (leave a dockerd this
# script started running; by default it is stopped at the end).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

t0=$(date +%s)
say() { printf 'smoke: %s\n' "$*"; }
skip() { echo "SKIPPED: $*"; exit 0; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# ---- can this machine run containers? -----------------------------------------------
[[ $(id -u) == 0 ]] || skip "not root (dockerd, debootstrap and host networking need root)"
# Debian's client matches Debian's daemon; a newer client in /usr/local/bin also works
# (it negotiates the API down), but prefer the distribution's.
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker
elif command -v docker >/dev/null; then DOCKER=$(command -v docker)
else skip "docker is not installed (apt-get install docker.io docker-compose debootstrap)"; fi
export DOCKER
command -v docker-compose >/dev/null || skip "docker-compose is not installed (apt-get install docker-compose)"
# Debian's python3 (python3-zmq, python3-msgpack); a pyenv or venv python3 first on PATH
# would not see them.
PY=${PYTHON:-python3}
[[ -z ${PYTHON:-} && -x /usr/bin/python3 ]] && PY=/usr/bin/python3
"$PY" -c 'import zmq, msgpack' 2>/dev/null || skip "python3-zmq / python3-msgpack not installed for $PY"

started_dockerd=""
if ! "$DOCKER" info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || skip "no dockerd running and none installed"
  dlog=/var/log/finestra-smoke-dockerd.log
  say "starting dockerd --bridge=none --iptables=false (log: $dlog)"
  setsid dockerd --bridge=none --iptables=false >"$dlog" 2>&1 </dev/null &
  started_dockerd=$!
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 0.5
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    tail -5 "$dlog" >&2
    kill "$started_dockerd" 2>/dev/null
    skip "dockerd did not start (see $dlog)"
  fi
fi

export FINESTRA_IMAGE_TAG=${FINESTRA_IMAGE_TAG:-smoke}
export FINESTRA_PG_PASSWORD
FINESTRA_PG_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
project=finestra-smoke-$$
compose=(docker-compose --ansi never -f docker-compose.yml -f deploy/compose.hostnet.yml -p "$project")
timeout_s=${FINESTRA_SMOKE_TIMEOUT:-180}
workdir=$(mktemp -d /tmp/finestra-smoke.XXXXXX)
result=1

finish() {
  local rc=$?
  if [[ ${FINESTRA_SMOKE_KEEP:-0} == 1 ]]; then
    say "leaving project $project up (FINESTRA_SMOKE_KEEP=1); remove with: ${compose[*]} down -v"
  else
    "${compose[@]}" down -v --remove-orphans >"$workdir/down.log" 2>&1 \
      || { say "down failed:"; tail -5 "$workdir/down.log"; }
  fi
  if [[ -n $started_dockerd && ${FINESTRA_SMOKE_KEEP_DOCKERD:-0} != 1 && ${FINESTRA_SMOKE_KEEP:-0} != 1 ]]; then
    kill "$started_dockerd" 2>/dev/null && wait "$started_dockerd" 2>/dev/null
  fi
  rm -rf "$workdir"
  say "total $(elapsed "$t0") s"
  if [[ $result == 0 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
  exit "$result"
}
trap finish EXIT
trap 'exit 1' INT TERM

# ---- ports of the host-network stack must be free -------------------------------------
ports=(15433 16380 5556 5566 5611 5612 5613 5614 5615 8091 8092 8093 8094 8095)
busy=()
for p in "${ports[@]}"; do
  # Any socket, not only listeners: a connection's local port blocks a bind too.
  ss -Htan "sport = :$p" 2>/dev/null | grep -v TIME-WAIT | grep -q . && busy+=("$p")
done
if ((${#busy[@]})); then
  say "ports in use, another stack runs with deploy/compose.hostnet.yml? ${busy[*]}"
  exit 1
fi

# ---- the operators' files must stay valid too (they cannot run here: no bridge) ------------
for files in "docker-compose.yml" "docker-compose.yml docker-compose.override.yml"; do
  args=(); for f in $files; do args+=(-f "$f"); done
  if ! docker-compose "${args[@]}" config -q; then say "invalid compose configuration: $files"; exit 1; fi
done

# ---- base image, images ------------------------------------------------------------------
t=$(date +%s)
if ! deploy/docker/make-base-image.sh; then say "base image could not be made"; exit 1; fi
say "base image ready in $(elapsed "$t") s"

t=$(date +%s)
say "building images (tag $FINESTRA_IMAGE_TAG)"
if ! "${compose[@]}" build --force-rm >"$workdir/build.log" 2>&1; then
  tail -60 "$workdir/build.log"
  say "image build failed"
  exit 1
fi
say "images built in $(elapsed "$t") s: $("$DOCKER" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
   | grep ":$FINESTRA_IMAGE_TAG " | tr '\n' ' ')"

# ---- up, healthy -------------------------------------------------------------------------
t=$(date +%s)
if ! "${compose[@]}" up -d --no-build >"$workdir/up.log" 2>&1; then
  cat "$workdir/up.log"
  "${compose[@]}" logs --no-color --tail=40
  say "up failed"
  exit 1
fi
services=$("${compose[@]}" config --services)
deadline=$(( $(date +%s) + timeout_s ))
while :; do
  unhealthy=()
  for s in $services; do
    cid=$("${compose[@]}" ps -q "$s" 2>/dev/null)
    h=$([[ -n $cid ]] && "$DOCKER" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$cid" 2>/dev/null)
    [[ $h == healthy ]] || unhealthy+=("$s:${h:-missing}")
  done
  ((${#unhealthy[@]} == 0)) && break
  if (( $(date +%s) > deadline )); then
    say "not healthy after ${timeout_s} s: ${unhealthy[*]}"
    for u in "${unhealthy[@]}"; do
      s=${u%%:*}
      say "---- logs of $s ----"
      "${compose[@]}" logs --no-color --tail=60 "$s"
      cid=$("${compose[@]}" ps -q "$s" 2>/dev/null)
      [[ -n $cid ]] && "$DOCKER" inspect -f '{{if .State.Health}}{{range .State.Health.Log}}health: {{.Output}}{{end}}{{end}}' "$cid"
    done
    exit 1
  fi
  sleep 2
done
say "all healthy in $(elapsed "$t") s: $(echo $services)"

# ---- end to end ---------------------------------------------------------------------------
t=$(date +%s)
pg=$("${compose[@]}" ps -q postgres)
if "$PY" tests/compose/e2e_check.py --endpoint tcp://127.0.0.1:5556 \
     --psql "$DOCKER exec -i $pg psql -U finestra -d finestra" --timeout 60; then
  result=0
else
  say "---- service logs (tail) ----"
  "${compose[@]}" logs --no-color --tail=30 intake referral-router notification reporting
fi
say "e2e check took $(elapsed "$t") s"
