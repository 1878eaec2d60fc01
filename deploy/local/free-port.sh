#!/usr/bin/env bash
#  free-port.sh - prints N (default 1) distinct free TCP ports on 127.0.0.1, one a line,
#  for throwaway test stores: `read -r pg redis < <(deploy/local/free-port.sh 2 | xargs)`.
#
#  Ports come from 20000-32767, below Linux's ephemeral range (32768-60999), so an outgoing
#  connection cannot take one between this check and the server's bind. A port is free when
#  it can be bound (python3) or, without python3, when nothing answers on it.
set -euo pipefail

n=${1:-1}
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 100 ] \
    || { echo "usage: free-port.sh [N]   (1-100)" >&2; exit 2; }

if command -v python3 >/dev/null 2>&1; then
    exec python3 - "$n" <<'EOF'
import random, socket, sys
want = int(sys.argv[1])
held = []                       # kept bound until all are chosen, so they are distinct
for _ in range(10000):
    if len(held) == want:
        break
    port = random.randint(20000, 32767)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
if len(held) < want:
    sys.exit("free-port.sh: no free port found in 20000-32767")
for s in held:
    print(s.getsockname()[1])
    s.close()
EOF
fi

chosen=" "
for _ in $(seq 10000); do
    [ $n -gt 0 ] || exit 0
    port=$(( 20000 + RANDOM % 12768 ))
    case "$chosen" in *" $port "*) continue ;; esac
    #  Connection refused: nothing listens there.
    if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
        echo $port
        chosen="$chosen$port "
        n=$(( n - 1 ))
    fi
done
[ $n -eq 0 ] || { echo "free-port.sh: no free port found in 20000-32767" >&2; exit 1; }
