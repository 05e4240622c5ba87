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
