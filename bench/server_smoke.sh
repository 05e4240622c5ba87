#!/bin/sh
# Server-mode smoke test of thimble-bench: starts thimble on a free loopback port serving FOLDER,
# drives it briefly, stops it. Usage: server_smoke.sh THIMBLE THIMBLE_BENCH FOLDER
set -u
thimble=$1 bench=$2 folder=$(cd "$3" && pwd)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'server: {host: 127.0.0.1, port: %s, workers: 2}\nsecurity: {keys: [bench-key]}\nsource: {file: {root: %s}}\n' \
  "$port" "$folder" > "$dir/thimble.yaml"
setpriv --pdeathsig KILL -- "$thimble" --config "$dir/thimble.yaml" > "$dir/thimble.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
  sleep 0.1
done
THIMBLE_KEY=bench-key "$bench" --server "http://127.0.0.1:$port" --iterations 1 --requests 300 \
  --connections 8 --scenario fit-in/64x64 "$folder"
status=$?
kill -TERM "$pid"
wait "$pid" || status=1
[ "$status" -eq 0 ] || cat "$dir/thimble.log"
exit "$status"
