#!/usr/bin/env bash
# Load and fault runs against a real `thimble` on 127.0.0.1, driven by thimble-load. Each run is
# bounded in time, starts what it needs and stops it again.
#
#   bench/load_test.sh mixed   [SECONDS] [CONNECTIONS]   mixed traffic (default 60 s, 256)
#   bench/load_test.sh faults  [SECONDS]                 S3 stopped and restarted, then an HTTP
#                                                        origin slow and resetting, under load
#   bench/load_test.sh drain   [SECONDS]                 SIGTERM in the middle of the load
#   bench/load_test.sh storm   [SIZE] [ROUNDS]          miss storms: SIZE identical requests at
#                                                        once (default 1000, 3 rounds per original),
#                                                        on the default queue of 64: all 200
#   bench/load_test.sh allocators [SECONDS] [CONNECTIONS]  `mixed` (default 60 s, 64) with each
#                                                        ALLOCATOR below
#
# Environment: BUILD (default build), ALLOCATOR for `mixed` (arena2 = Thimble's default of two
# malloc arenas, glibc = glibc's default of 8 per core, mmap1m = MALLOC_MMAP_THRESHOLD_=1048576 too,
# jemalloc; default arena2), IMAGES (folder of originals; default ../shared/corpus/large),
# THIMBLE_UID (when run as root, thimble runs as this user id, as in a container: e.g. 65534 for
# a drain without the privilege to attach a socket filter).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

BUILD=${BUILD:-build}
THIMBLE=$BUILD/proxy/thimble
LOAD=$BUILD/bench/thimble-load
IMAGES=${IMAGES:-../shared/corpus/large}
KEY=load-test-key
export THIMBLE_KEY=$KEY
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Servers started in a subshell (the S3 restart of `faults`) are not in PIDS: their file is.
  if [ -f "$WORK/started.pids" ]; then
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done < "$WORK/started.pids"
  fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_built "$THIMBLE" "$LOAD"

wait_ready() {  # until thimble-load has warmed up and begun its timed load, at most 120 s
  for _ in $(seq 1200); do
    [ -e "$WORK/ready" ] && return 0
    sleep 0.1
  done
}

# start_thimble PORT SOURCE_YAML [ALLOCATOR] [EXTRA_YAML]: thimble in the background; its pid
# in THIMBLE_PID.
start_thimble() {
  local port=$1 source=$2 allocator=${3:-arena2} extra=${4:-}
  cat > "$WORK/thimble.yaml" <<EOF
server: {host: 127.0.0.1, port: $port, queue_length: 64, request_timeout_ms: 10000,
         drain_timeout_ms: 20000, access_log: false}
security: {keys: [$KEY]}
source: $source
$extra
EOF
  local env=()
  case $allocator in
    glibc) env=(MALLOC_ARENA_MAX=$((8 * $(nproc)))) ;;  # glibc's own default: 8 per core
    arena2) ;;                            # Thimble's default: two arenas
    mmap1m) env=(MALLOC_MMAP_THRESHOLD_=1048576) ;;  # fixed: big blocks always mmap()ed
    jemalloc)
      [ -f "$JEMALLOC" ] || { echo "jemalloc: install libjemalloc2" >&2; exit 2; }
      env=(LD_PRELOAD=$JEMALLOC) ;;
    *) echo "unknown allocator $allocator" >&2; exit 2 ;;
  esac
  # THIMBLE_UID: run it as that user, as a container does (root only), from copies it can read.
  # The credentials change first: that clears the parent-death signal GUARDED sets.
  local as_user=() binary=$THIMBLE
  if [ -n "${THIMBLE_UID:-}" ] && [ "$(id -u)" = 0 ]; then
    binary=$WORK/thimble
    cp "$THIMBLE" "$binary"
    chmod 755 "$WORK" "$binary" && chmod 644 "$WORK/thimble.yaml"
    as_user=(setpriv --reuid="$THIMBLE_UID" --regid="$THIMBLE_UID" --clear-groups)
  fi
  "${as_user[@]}" "${GUARDED[@]}" env "${env[@]}" "$binary" --config "$WORK/thimble.yaml" \
    > "$WORK/thimble.log" 2>&1 &
  THIMBLE_PID=$!
  PIDS+=("$THIMBLE_PID")
  wait_http "http://127.0.0.1:$port/healthz"
}

image_args() {  # --image KEY for every image in IMAGES (not its other files)
  for f in "$IMAGES"/*; do
    case $f in
      *.jpg | *.jpeg | *.png | *.webp | *.gif | *.heic | *.avif) printf -- '--image\n%s\n' "$(basename "$f")" ;;
    esac
  done
}

mixed() {
  local seconds=${1:-60} connections=${2:-256} allocator=${ALLOCATOR:-arena2} port
  port=$(free_port)
  start_thimble "$port" "{type: file, file: {root: $(cd "$IMAGES" && pwd)}}" "$allocator"
  echo "==> mixed traffic: $connections connections, $seconds s, allocator $allocator"
  mapfile -t images < <(image_args)
  local status=0
  "$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --seconds "$seconds" \
    --connections "$connections" --json "$WORK/mixed.json" || status=$?
  kill -TERM "$THIMBLE_PID"
  wait "$THIMBLE_PID" || { echo "thimble exited with $?" >&2; status=1; }
  return $status
}

allocators() {
  local seconds=${1:-60} connections=${2:-64}
  for allocator in glibc arena2 mmap1m jemalloc; do
    ALLOCATOR=$allocator mixed "$seconds" "$connections" |
      grep -E "==>|thimble-load:|memory|cached |transform "
  done
}

# A small HTTP origin whose behaviour a file switches: ok, slow (5 s before answering) or reset
# (half the body, then a reset connection).
start_http_origin() {
  local port=$1
  echo ok > "$WORK/origin.mode"
  python3 - "$port" "$(cd "$IMAGES" && pwd)" "$WORK/origin.mode" > "$WORK/origin.log" 2>&1 <<'EOF' &
import http.server, os, socket, struct, sys, time
port, root, mode_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def do_GET(self):
        mode = open(mode_file).read().strip()
        path = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        body = open(path, "rb").read()
        if mode == "slow": time.sleep(5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"%d"' % os.path.getmtime(path))
        self.end_headers()
        if mode == "reset":
            self.wfile.write(body[: len(body) // 2]); self.wfile.flush()
            # Linger 0: the last close of the socket sends a reset. The handler's file objects
            # hold it too, so they are closed first.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.wfile.close(); self.rfile.close(); self.connection.close(); return
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Origin).serve_forever()
EOF
  PIDS+=("$!")
  wait_http "http://127.0.0.1:$port/"
}

start_originals() {  # PORT: the S3 server (bench/lib.sh start_s3) with IMAGES in `originals`
  start_s3 "$1"
  PIDS+=("$S3_PID")
  echo "$S3_PID" >> "$WORK/started.pids"
  s3_fill originals "$IMAGES"
}

# Fault runs keep no originals in memory: every transform goes to the source.
NO_ORIGINALS="original_cache: {memory_bytes: 0}"

faults() {
  local seconds=${1:-40} port s3_port origin_port quarter status=0
  quarter=$((seconds / 4))
  # S3: stopped for a quarter of the run, then started again (and refilled).
  port=$(free_port)
  s3_port=$(free_port)
  start_originals "$s3_port"
  start_thimble "$port" "{type: s3, s3: {$S3_KEYS, bucket: originals, timeout_ms: 2000,
    connect_timeout_ms: 500}}" arena2 "$NO_ORIGINALS"
  mapfile -t images < <(image_args)
  echo "==> S3 faults: the S3 server stopped at ${quarter} s, started again at $((2 * quarter)) s"
  # The fault clock starts when thimble-load's timed load does (after its warm-up, which needs
  # the source), so a slow warm-up never meets the fault.
  rm -f "$WORK/ready"
  (wait_ready; sleep "$quarter"; kill -TERM "$S3_PID"; echo "    [$(date +%T)] S3 stopped"
   sleep "$quarter"; start_originals "$s3_port"; echo "    [$(date +%T)] S3 back") &
  local chaos=$!
  "$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --seconds "$seconds" \
    --connections 64 --mix cached:50,transform:40,missing:10 --timeline --allow-5xx \
    --allow-errors --settle 3 --recovered-from $((3 * quarter)) --ready-file "$WORK/ready" ||
    status=$?
  wait "$chaos"
  kill -TERM "$THIMBLE_PID"; wait "$THIMBLE_PID" || status=1

  # HTTP origin: slow for a quarter, resetting for a quarter, then well again.
  port=$(free_port)
  origin_port=$(free_port)
  start_http_origin "$origin_port"
  start_thimble "$port" "{type: http, http: {base_url: 'http://127.0.0.1:$origin_port/',
    allow_private_networks: [127.0.0.1/32], timeout_ms: 2000, connect_timeout_ms: 500}}" \
    arena2 "$NO_ORIGINALS"
  echo "==> HTTP origin faults: slow from ${quarter} s, resetting from $((2 * quarter)) s," \
    "well from $((3 * quarter)) s"
  rm -f "$WORK/ready"
  (wait_ready; sleep "$quarter"; echo slow > "$WORK/origin.mode"
   echo "    [$(date +%T)] origin slow"
   sleep "$quarter"; echo reset > "$WORK/origin.mode"; echo "    [$(date +%T)] origin resetting"
   sleep "$quarter"; echo ok > "$WORK/origin.mode"; echo "    [$(date +%T)] origin well") &
  chaos=$!
  "$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --seconds "$seconds" \
    --connections 64 --mix cached:50,transform:40,missing:10 --timeline --allow-5xx \
    --allow-errors --settle 3 --recovered-from $((3 * quarter + 3)) --ready-file "$WORK/ready" ||
    status=$?
  wait "$chaos"
  kill -TERM "$THIMBLE_PID"; wait "$THIMBLE_PID" || status=1
  return $status
}

storm() {
  local size=${1:-1000} rounds=${2:-3} port
  port=$(free_port)
  start_thimble "$port" "{type: file, file: {root: $(cd "$IMAGES" && pwd)}}"
  mapfile -t images < <(image_args)
  echo "==> miss storms of $size identical requests, $rounds per original (queue_length 64)"
  "$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --storm "$size" --rounds "$rounds"
}

drain() {
  local seconds=${1:-10} port status=0 code root
  port=$(free_port)
  root=$(cd "$IMAGES" && pwd)
  if [ -n "${THIMBLE_UID:-}" ] && [ "$(id -u)" = 0 ]; then  # a copy the user can read
    cp -r "$root" "$WORK/images" && chmod -R a+rX "$WORK/images" && root=$WORK/images
  fi
  start_thimble "$port" "{type: file, file: {root: $root}}"
  mapfile -t images < <(image_args)
  echo "==> SIGTERM after $((seconds / 2)) s of load (80% uncached transforms) on 128 connections"
  rm -f "$WORK/ready"
  (wait_ready; sleep "$((seconds / 2))"; date -u +%T.%3N > "$WORK/term.at"
   kill -TERM "$THIMBLE_PID") &
  # Once the listener is closed, new connections are refused: expected. An accepted request left
  # unanswered would show as "Server returned nothing" or a receive error.
  "$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --seconds "$seconds" \
    --connections 128 --mix transform:80,cached:20 --allow-errors --settle 0 --timeline \
    --ready-file "$WORK/ready" > "$WORK/drain.txt" 2>&1 || true
  wait "$THIMBLE_PID" 2>/dev/null && code=0 || code=$?
  grep -vE "^ +[0-9]+:" "$WORK/drain.txt"
  echo "SIGTERM sent at $(cat "$WORK/term.at") (UTC); thimble said:"
  grep -E "received|stopped|drain|clos(ing|ed) port|could not" "$WORK/thimble.log" | cut -c1-160
  echo "thimble exit status: $code"
  [ "$code" -eq 0 ] || status=1
  if grep -E "no answer: (Server returned nothing|Failure when receiving|Send failure)" \
    "$WORK/drain.txt"; then
    echo "FAIL: accepted requests went unanswered"
    status=1
  fi
  return $status
}

case "${1:-}" in
  mixed | faults | drain | storm | allocators) "$@" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
