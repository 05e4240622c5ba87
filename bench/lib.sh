# Helpers the bench scripts share (sourced, not run): a free port on 127.0.0.1, waiting for a
# server to answer, wrk over a list of paths, and Thimble with its caches off under wrk. They read
# the caller's WORK (a scratch folder), CONNECTIONS and SECONDS_PER_PEER; uncached_thimble also
# THIMBLE, SIGN and THIMBLE_KEY.

# "${GUARDED[@]}" CMD... &: runs CMD so that it is killed when the calling script ends, however it
# ends (its trap does not run on SIGKILL, e.g. CTest's kill at a timeout). An array, not a
# function: a backgrounded function is a subshell, and $! would name it rather than CMD. Only for
# servers the script itself starts, not from a subshell that exits first.
GUARDED=(setpriv --pdeathsig KILL --)
# The same for nginx, whose master must stop its workers: SIGKILL would leave them running.
GUARDED_NGINX=(setpriv --pdeathsig TERM --)

# uncached_thimble NAME ROOT NAMES...: starts $THIMBLE with its caches off (every request decodes
# and resizes) on the originals of ROOT, keyed with $THIMBLE_KEY, and runs wrk over
# fit-in/300x200 of each of NAMES as peer NAME. Sets THIMBLE_PORT; the pid goes to PIDS.
uncached_thimble() {
  local name=$1 root=$2 n
  shift 2
  THIMBLE_PORT=$(free_port)
  printf '%s\n' "server: {host: 127.0.0.1, port: $THIMBLE_PORT, access_log: false}" \
    "security: {keys: [$THIMBLE_KEY]}" "source: {type: file, file: {root: $root}}" \
    "result_cache: {memory_bytes: 0}" "original_cache: {memory_bytes: 0}" \
    "output: {jpeg_quality: 80}" > "$WORK/thimble.yaml"
  "${GUARDED[@]}" "$THIMBLE" --config "$WORK/thimble.yaml" > "$WORK/thimble.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$THIMBLE_PORT/healthz"
  for n in "$@"; do "$SIGN" "fit-in/300x200/$n"; done > "$WORK/thimble.paths"
  run_wrk "$name" "http://127.0.0.1:$THIMBLE_PORT" "$WORK/thimble.paths"
}

# start_s3 PORT [GUARD...]: an S3-compatible server on 127.0.0.1:PORT in the background, as
# tests/s3_server.h chooses it (THIMBLE_S3_SERVER=moto|s3rver; unset, moto_server where it is
# found, else s3rver from npm, installed into $BUILD/s3rver). Its data stays in $WORK/s3 across a
# restart. Sets S3_PID and S3_KEYS (the YAML keys for Thimble's s3 section); s3_call signs with
# them. GUARD: a command prefix, e.g. "${GUARDED[@]}".
start_s3() {
  local port=$1 kind=${THIMBLE_S3_SERVER:-}
  shift
  [ -n "$kind" ] || { command -v moto_server > /dev/null && kind=moto || kind=s3rver; }
  if [ "$kind" = moto ]; then
    S3_CREDENTIALS=test:test
    "$@" moto_server -H 127.0.0.1 -p "$port" > "$WORK/s3.log" 2>&1 &
  else
    S3_CREDENTIALS=S3RVER:S3RVER
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    bash "$here/../tests/npm_ci.sh" "$here/../tests/s3rver" "${BUILD:-build}/s3rver" >&2
    mkdir -p "$WORK/s3"
    # s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
    "$@" node --openssl-legacy-provider "${BUILD:-build}/s3rver/node_modules/s3rver/bin/s3rver.js" \
      -d "$WORK/s3" -a 127.0.0.1 -p "$port" --no-vhost-buckets -s > "$WORK/s3.log" 2>&1 &
  fi
  S3_PID=$!
  S3_ENDPOINT=http://127.0.0.1:$port
  S3_KEYS="endpoint: '$S3_ENDPOINT', addressing: path, access_key_id: ${S3_CREDENTIALS%%:*},"
  S3_KEYS+=" secret_access_key: ${S3_CREDENTIALS#*:}"
  for _ in $(seq 100); do
    [ "$(s3_call GET / -o /dev/null -w '%{http_code}')" = 200 ] && return 0
    sleep 0.1
  done
  echo "the S3 server ($kind) does not answer on port $port" >&2
  return 1
}

# s3_call METHOD PATH [CURL ARGS...]: a SigV4-signed request to the server start_s3 started.
s3_call() {
  local method=$1 path=$2
  shift 2
  curl -s --aws-sigv4 aws:amz:us-east-1:s3 -u "$S3_CREDENTIALS" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X "$method" "$S3_ENDPOINT$path" "$@"
}

# s3_fill BUCKET DIR [PATTERN]: the bucket made (if new) and every file of DIR matching PATTERN
# (default: all) put in it under its name.
s3_fill() {
  local bucket=$1 dir=$2 pattern=${3:-*} file
  s3_call PUT "/$bucket" -o /dev/null
  for file in "$dir"/$pattern; do
    [ -f "$file" ] || continue
    [ "$(s3_call PUT "/$bucket/$(basename "$file")" -H 'Content-Type: application/octet-stream' \
      --data-binary "@$file" -o /dev/null -w '%{http_code}')" = 200 ] ||
      { echo "could not put $file in S3 bucket $bucket" >&2; return 1; }
  done
}

# need_built TOOL...: exits 2 (a usage error) naming the first build product that is missing.
need_built() {
  local tool
  for tool in "$@"; do
    [ -x "$tool" ] || { echo "$(basename "$0"): missing $tool (build first)" >&2; exit 2; }
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # URL: until it answers, at most 10 s
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  return 1
}

# wrk_script FILE: a wrk script requesting the paths of FILE in turn, each thread from its own
# starting point (so two connections do not ask for the same image at the same moment).
wrk_script() {
  {
    echo 'local paths = {}'
    while IFS= read -r p; do printf 'paths[#paths + 1] = "%s"\n' "$p"; done < "$1"
    cat <<'EOF'
local counter = 0
function setup(thread)
  thread:set("offset", counter * 7)
  counter = counter + 1
end
local i = 0
function init(args) i = offset or 0 end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function response(status, headers, body)
  if status ~= 200 then errors_seen = (errors_seen or 0) + 1 end
end
EOF
  } > "$WORK/$(basename "$1").lua"
}

# run_wrk NAME BASE_URL PATHS_FILE: requests/s of a peer, after checking every path answers an
# image.
run_wrk() {
  local name=$1 base=$2 paths=$3
  while IFS= read -r p; do
    type=$(curl -s -o "$WORK/check" -w '%{http_code} %{content_type}' "$base$p")
    case $type in
      "200 image/jpeg"*) ;;
      *)
        echo "$name: $p answered '$type'" >&2
        [ -f "$WORK/nginx/error.log" ] && tail -5 "$WORK/nginx/error.log" >&2
        exit 1
        ;;
    esac
  done < "$paths"
  wrk_script "$paths"
  wrk -t "$CONNECTIONS" -c "$CONNECTIONS" -d "${SECONDS_PER_PEER}s" --latency \
    -s "$WORK/$(basename "$paths").lua" "$base" > "$WORK/$name.wrk"
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.wrk")
  printf '%-22s %10s req/s   p50 %8s   p99 %8s   errors %s\n' "$name" "$rps" "$p50" "$p99" \
    "${non2xx:-0}"
  echo "$rps" > "$WORK/$name.rps"
}
