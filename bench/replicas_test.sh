#!/usr/bin/env bash
# Three Thimble replicas behind nginx, sharing S3 as source and result storage,
# under mixed traffic from thimble-load (cached hits, uncached transforms, 304 revalidations), through
# faults, phase by phase:
#   steady         three replicas, no fault
#   kill -9        one replica killed with SIGKILL a third of the way in
#   after the kill two replicas, no fault: no error at all
#   rolling        each replica in turn gets SIGTERM, drains, exits 0 and is started again
# then checks that a replica started against the warm storage serves hits from its first request,
# that every object in the result bucket is whole (no half-made result of the killed replica),
# and that each replica's peak RSS stayed under the memory bound of its configuration.
#
#   bench/replicas_test.sh [SECONDS_PER_PHASE] [CONNECTIONS]     (default 20 s, 32 connections)
#
# Needs: nginx, boto3, an S3 server (bench/lib.sh start_s3: moto_server, else s3rver), a build
# of thimble, thimble-sign and thimble-load in BUILD (default build). Environment: IMAGES (default
# conf/samples), THIMBLE_S3_SERVER (moto or s3rver).
# Everything it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

PHASE=${1:-20}
CONNECTIONS=${2:-32}
BUILD=${BUILD:-build}
THIMBLE=$BUILD/proxy/thimble
LOAD=$BUILD/bench/thimble-load
SIGN=$BUILD/signing/thimble-sign
IMAGES=${IMAGES:-conf/samples}
KEY=replicas-test-key
export THIMBLE_KEY=$KEY
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
declare -A REPLICA_PID REPLICA_PORT PEAK_MIB
cleanup() {
  # TERM: nginx's master stops its workers (KILL would leave them running).
  for pid in "${PIDS[@]}" "${REPLICA_PID[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_built "$THIMBLE" "$LOAD" "$SIGN"
command -v nginx > /dev/null || { echo "missing nginx (apt-get install nginx-light)" >&2; exit 2; }
python3 -c 'import boto3' 2> /dev/null || { echo "missing boto3 (apt-get install python3-boto3)" >&2; exit 2; }

# The configuration's memory bound (README, "Hostile input, overload and faults"): 55 MiB + the
# result cache + the kept originals + per worker one decoded original and a progressive JPEG's
# coefficients.
RESULT_CACHE_MIB=32 ORIGINALS_MIB=16 WORKERS=1 PIXELS=30000000 DECODER_MIB=128
BOUND_MIB=$(awk -v r=$RESULT_CACHE_MIB -v o=$ORIGINALS_MIB -v w=$WORKERS -v p=$PIXELS \
  -v d=$DECODER_MIB 'BEGIN {printf "%d", 55 + r + o + w * (p * 4 / 1048576 + d)}')

# S3: the originals and the result storage.
s3_port=$(free_port)
start_s3 "$s3_port" "${GUARDED[@]}"
PIDS+=("$S3_PID")
s3_fill originals "$IMAGES" '*.jpg' && s3_fill originals "$IMAGES" '*.png' &&
  s3_fill originals "$IMAGES" '*.webp'
s3_call PUT /results -o /dev/null
S3=$S3_KEYS

# start_replica N: replica N on its port (kept across restarts), in the background.
start_replica() {
  local n=$1
  [ -n "${REPLICA_PORT[$n]:-}" ] || REPLICA_PORT[$n]=$(free_port)
  cat > "$WORK/replica$n.yaml" <<EOF
server: {host: 127.0.0.1, port: ${REPLICA_PORT[$n]}, workers: $WORKERS, queue_length: 64,
         drain_timeout_ms: 15000, access_log: false}
security: {keys: [$KEY]}
source: {type: s3, s3: {$S3, bucket: originals}}
result_storage: {type: s3, s3: {$S3, bucket: results, prefix: t/}}
result_cache: {memory_bytes: $((RESULT_CACHE_MIB << 20))}
original_cache: {memory_bytes: $((ORIGINALS_MIB << 20))}
limits: {max_source_pixels: $PIXELS, max_decoder_memory_bytes: $((DECODER_MIB << 20))}
EOF
  "${GUARDED[@]}" "$THIMBLE" --config "$WORK/replica$n.yaml" >> "$WORK/replica$n.log" 2>&1 &
  REPLICA_PID[$n]=$!
  wait_http "http://127.0.0.1:${REPLICA_PORT[$n]}/readyz"
}
# peak_of N: records replica N's peak RSS (VmHWM) so far, in MiB.
peak_of() {
  local n=$1 kib
  kib=$(awk '/^VmHWM:/ {print $2}' "/proc/${REPLICA_PID[$n]}/status" 2>/dev/null || true)
  local mib=$((${kib:-0} / 1024))
  [ "$mib" -gt "${PEAK_MIB[$n]:-0}" ] && PEAK_MIB[$n]=$mib
  return 0
}
for n in 1 2 3; do start_replica "$n"; done

# nginx in front: idempotent GETs go to the next replica on a refused or reset connection, a
# timeout, or a draining replica's 503.
nginx_port=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
$( [ "$(id -u)" = 0 ] && echo "user root;")
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  upstream thimble {
    server 127.0.0.1:${REPLICA_PORT[1]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${REPLICA_PORT[2]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${REPLICA_PORT[3]} max_fails=1 fail_timeout=2s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port backlog=4096;
    location / {
      proxy_pass http://thimble;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 60s;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
    }
  }
}
EOF
"${GUARDED_NGINX[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$nginx_port/healthz"

images=()
for f in "$IMAGES"/*.jpg "$IMAGES"/*.png "$IMAGES"/*.webp; do images+=(--image "$(basename "$f")"); done

# phase NAME [FAULT_COMMAND]: PHASE seconds of load through nginx; FAULT_COMMAND runs in the
# background once the timed load has begun. Prints one summary row.
printf '%-16s %9s %8s %8s %8s  %s\n' phase requests errors "p50 ms" "p99 ms" "statuses"
phase() {
  local name=$1 fault=${2:-}
  rm -f "$WORK/ready"
  "$LOAD" --server "http://127.0.0.1:$nginx_port" "${images[@]}" --seconds "$PHASE" \
    --connections "$CONNECTIONS" --threads 2 --mix cached:50,transform:30,revalidate:20 \
    --allow-errors --allow-5xx --settle 0 --max-fd-growth 100000 \
    --ready-file "$WORK/ready" > "$WORK/phase.txt" 2>&1 &
  local load=$!
  # The fault runs in this shell (the replicas it starts are its children), once the timed load
  # has begun.
  if [ -n "$fault" ]; then
    for _ in $(seq 1200); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
    $fault > "$WORK/fault.log" 2>&1
  fi
  wait "$load" || true
  for n in 1 2 3; do peak_of "$n"; done
  # Errors: requests without an answer, and answers other than 200 and 304.
  awk -v name="$name" '
    /without an answer/ { for (i = 1; i <= NF; i++) if ($i == "requests") total = $(i - 1)
                          for (i = 1; i <= NF; i++) if ($(i + 1) == "without") lost = $i }
    $1 ~ /^(cached|transform|revalidate)$/ {
      n += 0; p50[$1] = $3; p99[$1] = $4
      for (i = 5; i <= NF; i++) { split($i, sc, "×"); seen[sc[1]] += sc[2]
                                  if (sc[1] != 200 && sc[1] != 304) bad += sc[2] } }
    END {
      s = ""; for (k in seen) s = s k "×" seen[k] " "
      printf "%-16s %9d %8d %8s %8s  %s\n", name, total, bad + lost, p50["transform"],
             p99["transform"], s
      print bad + lost > "/dev/stderr"
    }' "$WORK/phase.txt" 2> "$WORK/phase.errors"
  cat "$WORK/fault.log" 2>/dev/null | sed 's/^/    /' || true
  rm -f "$WORK/fault.log"
  PHASE_ERRORS=$(cat "$WORK/phase.errors")
}

kill_one() {
  sleep "$((PHASE / 3))"
  peak_of 1
  kill -KILL "${REPLICA_PID[1]}"
  echo "[$(date +%T)] replica 1 killed (SIGKILL)"
}
rolling() {
  for n in 1 2 3; do
    peak_of "$n"
    kill -TERM "${REPLICA_PID[$n]}"
    local code=0
    wait "${REPLICA_PID[$n]}" || code=$?
    echo "[$(date +%T)] replica $n drained, exit status $code"
    [ "$code" = 0 ] || echo "FAIL: replica $n exited with $code"
    start_replica "$n"
    echo "[$(date +%T)] replica $n started again"
    # nginx takes a replica back once its fail_timeout (2 s) is over: the next one goes after.
    sleep 3
  done
}

FAILED=0
phase "steady" && [ "$PHASE_ERRORS" = 0 ] || { echo "FAIL: errors with no fault"; FAILED=1; }
phase "kill -9" kill_one
wait "${REPLICA_PID[1]}" 2>/dev/null || true
KILL_ERRORS=$PHASE_ERRORS
phase "after the kill" && [ "$PHASE_ERRORS" = 0 ] || { echo "FAIL: errors after the failover"; FAILED=1; }

# Replica 1 again, with an empty memory, against the warm storage: its first answer is a hit.
start_replica 1
image=$(basename "$(ls "$IMAGES"/*.jpg | head -1)")
# fit-in/200x200 is one of the sizes thimble-load makes (and so stores) in every phase.
first=$(curl -s -o /dev/null -w '%{http_code}' \
  "http://127.0.0.1:${REPLICA_PORT[1]}$("$SIGN" "fit-in/200x200/$image")")
metrics=$(curl -s "http://127.0.0.1:${REPLICA_PORT[1]}/metrics")
store_hits=$(awk '$1 == "thimble_result_storage_hits_total" {print $2}' <<< "$metrics")
transforms=$(awk '$1 == "thimble_transforms_total" {print $2}' <<< "$metrics")
echo "replica started against the warm storage: first answer $first, storage hits $store_hits, transforms $transforms"
[ "$first" = 200 ] && [ "$store_hits" = 1 ] && [ "$transforms" = 0 ] ||
  { echo "FAIL: the restarted replica did not serve its first request from storage"; FAILED=1; }

phase "rolling restart" rolling && [ "$PHASE_ERRORS" = 0 ] ||
  { echo "FAIL: requests failed during the rolling restart"; FAILED=1; }

# Every stored object is whole: an image with Thimble's headers, or an index entry naming a
# stored variant. A replica killed in the middle of a write leaves nothing behind (S3 PUTs are
# atomic; this checks it).
python3 - "$S3_ENDPOINT" "$S3_CREDENTIALS" <<'EOF' || FAILED=1
import boto3, sys
key, secret = sys.argv[2].split(":")
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=key, aws_secret_access_key=secret)
magic = (b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"GIF8", b"\x00\x00\x00")
results = entries = bad = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="results", Prefix="t/"):
    for item in page.get("Contents", []):
        obj = s3.get_object(Bucket="results", Key=item["Key"])
        body = obj["Body"].read()
        if item["Key"].startswith("t/.thimble/variants/"):
            entries += 1
            continue
        results += 1
        meta = obj.get("Metadata", {})
        if (len(body) != obj["ContentLength"] or not body.startswith(magic)
                or "thimble-etag" not in meta or not obj["ContentType"].startswith("image/")):
            bad += 1
            print("FAIL: damaged stored result", item["Key"])
print("result storage: %d results and %d index entries, %d damaged" % (results, entries, bad))
sys.exit(1 if bad else 0)
EOF

for n in 1 2 3; do peak_of "$n"; done
for n in 1 2 3; do
  printf 'replica %d peak RSS %d MiB (bound %d MiB)\n' "$n" "${PEAK_MIB[$n]}" "$BOUND_MIB"
  [ "${PEAK_MIB[$n]}" -lt "$BOUND_MIB" ] || { echo "FAIL: replica $n over its memory bound"; FAILED=1; }
done
echo "kill -9: $KILL_ERRORS client-visible errors during the failover"
[ "$FAILED" = 0 ] && echo "replicas test: all checks passed"
exit "$FAILED"
