#!/usr/bin/env bash
# thimble-warm against the server's own uncached throughput, on the same originals and the same
# thumbnail (fit within 300x200, quality 80), in one run: the server with its caches off under
# wrk, then thimble-warm into a fresh directory store (three runs, the median), then
# thimble-warm --server against that server. Then the peak memory of thimble-warm on a listing
# of many keys (a folder of small JPEGs): it must not grow with the library.
#
#   bench/warm_bench.sh [COPIES] [SECONDS] [KEYS]
#       COPIES   copies of each corpus JPEG in the library (default 20)
#       SECONDS  of wrk against the server (default 20)
#       KEYS     small originals for the memory figure (default 100000; 0 skips it)
#
# Needs: wrk (Debian package). Environment: BUILD (default build), IMAGES (a folder of JPEGs;
# default ../shared/corpus). Everything it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

COPIES=${1:-20}
SECONDS_PER_PEER=${2:-20}
KEYS=${3:-100000}
CONNECTIONS=$(nproc)
BUILD=${BUILD:-build}
THIMBLE=$BUILD/proxy/thimble
WARM=$BUILD/proxy/thimble-warm
SIGN=$BUILD/signing/thimble-sign
IMAGES=${IMAGES:-../shared/corpus}
export THIMBLE_KEY=warm-bench-key
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_built "$THIMBLE" "$WARM" "$SIGN"
command -v wrk > /dev/null || { echo "bench/warm_bench.sh: missing wrk (apt-get install wrk)" >&2; exit 2; }

mkdir -p "$WORK/originals"
for copy in $(seq "$COPIES"); do
  while IFS= read -r -d '' f; do
    rel=${f#"$IMAGES"/}
    cp "$f" "$WORK/originals/c${copy}_${rel//\//_}"
  done < <(find "$IMAGES" -name '*.jpg' -print0 | sort -z)
done
mapfile -t names < <(ls "$WORK/originals")
[ ${#names[@]} -gt 0 ] || { echo "no JPEGs below $IMAGES" >&2; exit 2; }
echo "warm: ${#names[@]} JPEGs ($COPIES copies of each), fit-in/300x200 at quality 80, $(nproc) cores"

# The server, every request transformed.
uncached_thimble "server, uncached" "$WORK/originals" "${names[@]}"
port=$THIMBLE_PORT
server_rps=$(cat "$WORK/server, uncached.rps")

# thimble-warm in its own process, into a fresh store each time.
cat > "$WORK/warm.yaml" <<EOF
security: {keys: [$THIMBLE_KEY]}
source: {type: file, file: {root: $WORK/originals}}
result_storage: {type: directory, directory: $WORK/store}
EOF
rates=()
for run in 1 2 3; do
  rm -rf "$WORK/store"
  "$WARM" --config "$WORK/warm.yaml" --options fit-in/300x200 --quiet > /dev/null 2> "$WORK/warm.$run"
  rates+=("$(awk '/images\/s/ {print $2}' "$WORK/warm.$run")")
done
warm_rate=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n 2p)
printf '%-22s %10s images/s (median of %s)\n' "thimble-warm" "$warm_rate" "${rates[*]}"
# A second run over the full store: everything is checked and skipped.
skip_start=$(date +%s.%N)
"$WARM" --config "$WORK/warm.yaml" --options fit-in/300x200 --quiet > /dev/null 2> "$WORK/warm.skip"
skip_seconds=$(awk -v a="$skip_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
printf '%-22s %10s s for %s up-to-date variants (the whole process)\n' "thimble-warm, re-run" "$skip_seconds" \
  "$(awk '/skipped/ {print $2}' "$WORK/warm.skip")"

# thimble-warm --server: the same requests through the running server.
"$WARM" --config "$WORK/thimble.yaml" --server "http://127.0.0.1:$port" --options fit-in/300x200 \
  --quiet > /dev/null 2> "$WORK/warm.server"
server_mode=$(awk '/images\/s/ {print $2}' "$WORK/warm.server")
printf '%-22s %10s images/s\n' "thimble-warm --server" "$server_mode"
awk -v w="$warm_rate" -v s="$server_rps" -v m="$server_mode" \
  'BEGIN {printf "thimble-warm / server uncached: x%.2f; --server / server uncached: x%.2f\n", w / s, m / s}'

if [ "$KEYS" -gt 0 ]; then
  # A library of KEYS small JPEGs (copies of one 64x48 thumbnail: each is its own key).
  mkdir -p "$WORK/many" "$WORK/store-many"
  # The seed: the first corpus JPEG made small by the server itself.
  curl -s -o "$WORK/many/seed.jpg" "http://127.0.0.1:$port$("$SIGN" "64x48/${names[0]}")"
  python3 - "$WORK/many" "$KEYS" <<'PY'
import os, sys
folder, count = sys.argv[1], int(sys.argv[2])
seed = open(os.path.join(folder, "seed.jpg"), "rb").read()
for i in range(count):
    sub = os.path.join(folder, "a", "%03d" % (i % 1000))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "k%d.jpg" % i), "wb") as out:
        out.write(seed)
os.remove(os.path.join(folder, "seed.jpg"))
PY
  cat > "$WORK/many.yaml" <<EOF
security: {keys: [$THIMBLE_KEY]}
source: {type: file, file: {root: $WORK/many}}
result_storage: {type: directory, directory: $WORK/store-many}
EOF
  /usr/bin/time -f '%M' -o "$WORK/rss.dry" "$WARM" --config "$WORK/many.yaml" --options 32x32 \
    --dry-run > /dev/null 2>&1
  /usr/bin/time -f '%M' -o "$WORK/rss.full" "$WARM" --config "$WORK/many.yaml" --options 32x32 \
    --quiet > /dev/null 2> "$WORK/warm.many"
  printf '%-22s %10s KiB peak RSS (--dry-run: %s KiB), %s keys, %s images/s\n' \
    "thimble-warm, listing" "$(tail -1 "$WORK/rss.full")" "$(tail -1 "$WORK/rss.dry")" "$KEYS" \
    "$(awk '/images\/s/ {print $2}' "$WORK/warm.many")"
fi
