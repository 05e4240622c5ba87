#!/usr/bin/env bash
# The container image, built and run here: a Debian 12 base made without any registry
# (mmdebstrap + podman import; kept as localhost/thimble-base:bookworm for the next run), the
# Containerfile built on it, then the container started and checked: a signed thumbnail, the
# process's user, the HEALTHCHECK, and SIGTERM under load (every accepted request answered, exit
# status 0). Prints the image size. Everything it starts is removed when it ends.
#
#   bench/container_test.sh [SECONDS]        (load during the SIGTERM check; default 10)
#
# Needs root, podman, runc and mmdebstrap (./dev.sh container installs them) and a build of
# thimble-sign and thimble-load in BUILD (default build). podman runs with runc, explicit
# ulimits and the host network: crun refuses these hosts' hybrid cgroups, root here cannot raise
# limits, and the bridge network leaves iptables chains behind.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SECONDS_OF_LOAD=${1:-10}
BUILD=${BUILD:-build}
SIGN=$BUILD/signing/thimble-sign
LOAD=$BUILD/bench/thimble-load
BASE=localhost/thimble-base:bookworm
IMAGE=localhost/thimble:test
NAME=thimble-container-test-$$
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
WORK=$(mktemp -d)
# The image stays (localhost/thimble:test), so the next build reuses its layers.
cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$NAME" > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in podman runc mmdebstrap; do
  command -v "$tool" > /dev/null || { echo "missing $tool (./dev.sh container installs it)" >&2; exit 2; }
done
need_built "$SIGN" "$LOAD"

step() { echo "==> $*"; }
check() {  # DESCRIPTION COMMAND...: runs COMMAND, prints ok or FAIL
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILED=1; fi
}
FAILED=0

if ! "${PODMAN[@]}" image exists "$BASE"; then
  step "making the Debian 12 base with mmdebstrap (once)"
  mmdebstrap --quiet --variant=minbase bookworm "$WORK/rootfs.tar" http://deb.debian.org/debian
  "${PODMAN[@]}" import --quiet "$WORK/rootfs.tar" "$BASE" > /dev/null
  rm -f "$WORK/rootfs.tar"
fi

step "building the image (Containerfile, BASE=$BASE)"
build_start=$(date +%s)
# Docker's image format: OCI images have no HEALTHCHECK.
"${PODMAN[@]}" build --quiet --format docker --network host "${LIMITS[@]}" --build-arg "BASE=$BASE" \
  -f Containerfile -t "$IMAGE" . > "$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log" >&2; exit 1; }
echo "built in $(($(date +%s) - build_start)) s"

port=$(free_port)
step "starting it on port $port"
"${PODMAN[@]}" run -d --name "$NAME" --network host "${LIMITS[@]}" \
  -e "THIMBLE_SERVER_PORT=$port" -e THIMBLE_SERVER_ACCESS_LOG=false "$IMAGE" > /dev/null
wait_http "http://127.0.0.1:$port/healthz"

# The embedded configuration: the bundled samples, signed with the development key.
export THIMBLE_KEY=thimble-development-key
url="http://127.0.0.1:$port$("$SIGN" fit-in/300x200/bridge.jpg)"
answer=$(curl -s -o "$WORK/thumb" -w '%{http_code} %{content_type}' "$url")
check "a signed thumbnail: $answer" [ "$answer" = "200 image/jpeg" ]
check "the example URL is printed at start" \
  grep -q "curl -o thumbnail.jpg 'http://127.0.0.1:$port/" <("${PODMAN[@]}" logs "$NAME" 2>&1)
user=$("${PODMAN[@]}" top "$NAME" user huser | awk 'NR == 2 {print $1 " " $2}')
check "runs as the user thimble, uid 10001, not root ($user)" [ "$user" = "thimble 10001" ]
check "the HEALTHCHECK passes" "${PODMAN[@]}" healthcheck run "$NAME"

step "SIGTERM after $((SECONDS_OF_LOAD / 2)) s of load (80% uncached transforms, 64 connections)"
images=()
for f in conf/samples/*.jpg conf/samples/*.png conf/samples/*.webp; do
  images+=(--image "$(basename "$f")")
done
rm -f "$WORK/ready"
(for _ in $(seq 1200); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
 sleep "$((SECONDS_OF_LOAD / 2))"
 "${PODMAN[@]}" stop -t 40 "$NAME" > /dev/null) &
stopper=$!
"$LOAD" --server "http://127.0.0.1:$port" "${images[@]}" --seconds "$SECONDS_OF_LOAD" \
  --connections 64 --mix transform:80,cached:20 --allow-errors --settle 0 \
  --ready-file "$WORK/ready" > "$WORK/load.txt" 2>&1 || true
wait "$stopper" || true
grep -E "requests|transform |cached |no answer" "$WORK/load.txt" | head -8 || true
# Once the listener is closed new connections are refused (expected); an accepted request left
# unanswered shows as "Server returned nothing" or a receive error.
check "every accepted request was answered" \
  bash -c "! grep -qE 'no answer: (Server returned nothing|Failure when receiving|Send failure)' '$WORK/load.txt'"
status=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
check "exit status after the drain: $status" [ "$status" = 0 ]
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -E "received|closing port|stopped" | cut -c1-140 | sed 's/^/    /'
check "it drained" grep -q "finishing in-flight requests" <("${PODMAN[@]}" logs "$NAME" 2>&1)

size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
base_size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE")
awk -v s="$size" -v b="$base_size" \
  'BEGIN {printf "image size: %.0f MB (the Debian 12 minbase under it: %.0f MB)\n", s / 1e6, b / 1e6}'
[ "$FAILED" = 0 ] && echo "container test: all checks passed"
exit "$FAILED"
