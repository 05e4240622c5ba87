#!/usr/bin/env bash
# Thimble's two commands, on Debian 12:
#   ./dev.sh serve   install what is missing, build (Release) and start thimble on 127.0.0.1:8888
#                    with the embedded configuration (conf/thimble.yaml, sample images, dev key)
#   ./dev.sh test    install what is missing, build (Release, with tests) and run the whole suite
#                    through CTest, then again under AddressSanitizer + UndefinedBehaviorSanitizer,
#                    the concurrency tests under ThreadSanitizer, and each fuzz target for
#                    FUZZ_SECONDS (default 60) under libFuzzer
#   ./dev.sh container   build the container image (Containerfile) on a Debian 12 base made
#                    here, run it and check it (bench/container_test.sh)
# Environment: JOBS (build parallelism, default 2), CI=true (warnings become errors).
set -euo pipefail
cd "$(dirname "$0")"

JOBS=${JOBS:-2}
BUILD_PACKAGES=(cmake g++ make pkg-config libpistache-dev libopencv-core-dev
  libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-objdetect-dev libyaml-cpp-dev
  libssl-dev libcurl4-openssl-dev doctest-dev zlib1g-dev libjpeg62-turbo-dev libpng-dev libwebp-dev
  liblcms2-dev libheif-dev libavif-dev libgif-dev libimagequant-dev libdeflate-dev libwebpdemux2 libwebpmux3
  opencv-data)
# libvips-dev: the baseline thimble-bench measures Thimble against (bench only).
# clang-14 + libclang-rt-14-dev: libFuzzer, for the bounded fuzz run (tests/fuzz/run.sh).
# libheif-examples, libavif-bin, webp, gifsicle: HEIC/AVIF/WebP/GIF test images made and checked.
# wrk, libnginx-mod-http-image-filter, libvips-tools: the peers bench/peers.sh measures against.
TEST_PACKAGES=(python3-libthumbor curl libvips-dev nginx-light nodejs clang-14 libclang-rt-14-dev
  libheif-examples libavif-bin webp gifsicle wrk libnginx-mod-http-image-filter libvips-tools)
# npm: the packages of the Kubernetes manifests check (tests/kubernetes) and s3rver (tests/s3rver).
# A Node.js that brings its own npm (NodeSource's) conflicts with Debian's npm package.
command -v npm >/dev/null || TEST_PACKAGES+=(npm)

install_missing() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "==> installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# build DIR SANITIZE [targets...]: both commands configure a folder the same way, so switching
# between them never reconfigures it; `serve` only builds fewer targets.
build() {
  local dir=$1 sanitize=$2
  shift 2
  local werror=OFF targets=()
  [ "${CI:-}" = true ] && werror=ON
  for target in "$@"; do targets+=(--target "$target"); done
  echo "==> building in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTHIMBLE_WERROR="$werror" \
    -DTHIMBLE_BUILD_TESTS=ON -DTHIMBLE_SANITIZE="$sanitize" >/dev/null
  cmake --build "$dir" -j "$JOBS" "${targets[@]}"
}

# The processes still running that the test command started (their environment holds its mark),
# listed and killed; the command then fails. Read with builtins only, so the check starts no
# process of its own that it would find.
check_no_leftovers() {
  local status=$? left=() environ pid vars var
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" = "$$" ] && continue
    { mapfile -d '' vars < "$environ"; } 2>/dev/null || continue
    for var in "${vars[@]}"; do
      if [ "$var" = "THIMBLE_TEST_RUN=$THIMBLE_TEST_RUN" ]; then
        left+=("$pid")
        break
      fi
    done
  done
  if [ ${#left[@]} -gt 0 ]; then
    echo "==> error: the tests left ${#left[@]} process(es) running:" >&2
    for pid in "${left[@]}"; do
      echo "    $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" >&2
    done
    kill -KILL "${left[@]}" 2>/dev/null || true
    [ "$status" -eq 0 ] && status=1
  else
    [ "$status" -eq 0 ] && echo "==> no process started by the tests is left running"
  fi
  exit "$status"
}

case "${1:-}" in
  serve)
    shift
    install_missing "${BUILD_PACKAGES[@]}"
    build build OFF thimble thimble-sign thimble-bench
    exec build/proxy/thimble --config conf/thimble.yaml "$@"
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # Every process the suite starts inherits this mark; none may outlive it (checked on exit,
    # also when a stage fails).
    export THIMBLE_TEST_RUN="$$-$(date +%s%N)"
    trap check_no_leftovers EXIT
    # The S3 tests run moto_server where it exists (Python's moto; under pyenv in this machine
    # image), else s3rver from npm, on which the cases that need signatures checked are skipped
    # and listed as such (tests/s3_server.h). Either way they also run once on s3rver.
    if ! command -v moto_server >/dev/null; then
      for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/moto_server; do
        [ -x "$candidate" ] && PATH="$(dirname "$candidate"):$PATH" && break
      done
      command -v moto_server >/dev/null ||
        echo "==> moto_server not found: the S3 tests run on s3rver (npm), without signature checks" >&2
    fi
    build build OFF
    echo "==> tests (Release)"
    ctest --test-dir build --output-on-failure -j "$JOBS"
    build build-sanitize ON
    echo "==> tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
    # tests/lsan.supp says which leaks are not Thimble's (also for the fuzz run below).
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
    ctest --test-dir build-sanitize --output-on-failure -j "$JOBS"
    # The concurrency tests (caches, single-flight, worker pool, the service under concurrent
    # requests) once more under ThreadSanitizer; tests/tsan.supp says what is not Thimble's.
    echo "==> building in build-tsan"
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHIMBLE_TSAN=ON \
      -DTHIMBLE_WERROR="$([ "${CI:-}" = true ] && echo ON || echo OFF)" >/dev/null
    cmake --build build-tsan -j "$JOBS" --target test_cache test_proxy
    echo "==> concurrency tests (ThreadSanitizer)"
    export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"
    build-tsan/tests/test_cache
    # Not run by CTest, so without its s3rver fixture: s3rver where the Release run installed it.
    THIMBLE_S3RVER_DIR="$PWD/build/s3rver" build-tsan/tests/test_proxy
    unset TSAN_OPTIONS
    echo "==> fuzzing, ${FUZZ_SECONDS:-60} s per target"
    tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
    ;;
  container)
    # The container image built from the Containerfile and checked (bench/container_test.sh);
    # slow (a Debian base, then a build inside it), so not part of `test`.
    install_missing "${BUILD_PACKAGES[@]}" podman runc mmdebstrap curl
    build build OFF thimble-sign thimble-load
    exec bench/container_test.sh "${@:2}"
    ;;
  *)
    echo "usage: ./dev.sh serve | ./dev.sh test | ./dev.sh container" >&2
    exit 2
    ;;
esac
