#!/usr/bin/env bash
# Thimble end to end over HTTP against the peers Debian ships: nginx's image_filter module and
# libvips' `vips thumbnail` command (a process per image, as a script or CGI would run it). The
# same originals (the corpus JPEGs), the same thumbnail (fit within 300x200, quality 80), every
# request transformed (Thimble's result cache and storage off; nginx's image_filter has none),
# on 127.0.0.1 with wrk. Everything it starts is stopped when it ends.
#
#   bench/peers.sh [SECONDS] [CONNECTIONS]     (default 20 s per peer, 2 connections)
#
# Needs: wrk, nginx with libnginx-mod-http-image-filter, libvips-tools (Debian packages; the
# script names what is missing). Environment: BUILD (default build), IMAGES (a folder of JPEGs;
# default ../shared/corpus, its JPEGs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SECONDS_PER_PEER=${1:-20}
CONNECTIONS=${2:-2}
BUILD=${BUILD:-build}
THIMBLE=$BUILD/proxy/thimble
SIGN=$BUILD/signing/thimble-sign
IMAGES=${IMAGES:-../shared/corpus}
FILTER_MODULE=/usr/lib/nginx/modules/ngx_http_image_filter_module.so
export THIMBLE_KEY=peers-bench-key
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

missing=()
for tool in "$THIMBLE" "$SIGN"; do [ -x "$tool" ] || missing+=("$tool (build first)"); done
command -v wrk > /dev/null || missing+=("wrk (apt-get install wrk)")
command -v nginx > /dev/null || missing+=("nginx (apt-get install nginx-light)")
[ -f "$FILTER_MODULE" ] || missing+=("nginx image_filter (apt-get install libnginx-mod-http-image-filter)")
command -v vips > /dev/null || missing+=("vips (apt-get install libvips-tools)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'bench/peers.sh: missing %s\n' "${missing[@]}" >&2
  exit 2
fi

# The originals: every JPEG below IMAGES, flattened into one folder both servers read (nginx's
# workers run as another user when it is started by root).
chmod 755 "$WORK"
mkdir -p "$WORK/originals"
while IFS= read -r -d '' f; do
  rel=${f#"$IMAGES"/}
  cp "$f" "$WORK/originals/${rel//\//_}"
done < <(find "$IMAGES" -name '*.jpg' -print0 | sort -z)
mapfile -t names < <(ls "$WORK/originals")
[ ${#names[@]} -gt 0 ] || { echo "no JPEGs below $IMAGES" >&2; exit 2; }

echo "peers: ${#names[@]} JPEGs, fit within 300x200 at quality 80, every request transformed,"
echo "$CONNECTIONS connections, ${SECONDS_PER_PEER} s each, $(nproc) cores"

# Thimble: caches off, so every request decodes and resizes.
uncached_thimble thimble "$WORK/originals" "${names[@]}"

# nginx image_filter (libgd): one worker per core, as many as Thimble's transform threads.
nport=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
load_module $FILTER_MODULE;
worker_processes $(nproc);
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$nport;
    location /thumb/ {
      alias $WORK/originals/;
      image_filter resize 300 200;
      image_filter_jpeg_quality 80;
      image_filter_buffer 64M;
    }
  }
}
EOF
"${GUARDED_NGINX[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$nport/thumb/${names[0]}"
for n in "${names[@]}"; do echo "/thumb/$n"; done > "$WORK/nginx.paths"
run_wrk "nginx image_filter" "http://127.0.0.1:$nport" "$WORK/nginx.paths"
mv "$WORK/nginx image_filter.rps" "$WORK/nginx.rps"

# vips thumbnail: a process per image, one per core at a time, every image three times.
start=$(date +%s.%N)
for _ in 1 2 3; do printf '%s\n' "${names[@]}"; done |
  xargs -P "$(nproc)" -I{} vips thumbnail "$WORK/originals/{}" "$WORK/{}.out.jpg[Q=80,strip]" \
    300 --height 200
end=$(date +%s.%N)
vips_rate=$(awk -v n=$((3 * ${#names[@]})) -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", n / (b - a)}')
printf '%-22s %10s images/s (a process per image)\n' "vips thumbnail" "$vips_rate"

thimble_rps=$(cat "$WORK/thimble.rps")
nginx_rps=$(cat "$WORK/nginx.rps")
awk -v t="$thimble_rps" -v n="$nginx_rps" -v v="$vips_rate" \
  'BEGIN {printf "thimble / nginx image_filter: x%.2f; thimble / vips thumbnail: x%.2f\n", t / n, t / v}'
