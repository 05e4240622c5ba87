#!/usr/bin/env bash
# Builds Thimble's fuzz targets with clang + libFuzzer (with ASan and UBSan) in build-fuzz/ and
# runs each for SECONDS, starting from the seeds (made from conf/samples), the saved findings
# (tests/fuzz/regressions/) and the corpus earlier runs grew (build-fuzz/corpus/).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     default: 60 s each for url, sniff, render and
#                                               s3_listing
#
# Prints each target's executions and corpus size; exits 1 on a finding, whose input is left in
# build-fuzz/findings/<target>/. Once it is fixed, copy that file into
# tests/fuzz/regressions/<target>/: the ordinary suite replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]} > 0)) || targets=(url sniff render s3_listing)
dir=build-fuzz
clang=${CLANG:-clang++-14}

echo "==> building the fuzz targets in $dir ($clang)"
CXX=$clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHIMBLE_FUZZ=ON \
  -DTHIMBLE_BUILD_TESTS=OFF -DTHIMBLE_WERROR="$([ "${CI:-}" = true ] && echo ON || echo OFF)" \
  >/dev/null
cmake --build "$dir" -j "${JOBS:-2}" --target thimble-fuzz-seeds "${targets[@]/#/fuzz_}"
rm -rf "$dir/seeds"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}"
"$dir/tests/fuzz/thimble-fuzz-seeds" "$dir/seeds" conf/samples >/dev/null

status=0
for target in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$target" "$dir/findings/$target"
  inputs=("$dir/seeds/$target")
  [ -d "tests/fuzz/regressions/$target" ] && inputs+=("tests/fuzz/regressions/$target")
  log="$dir/fuzz_$target.log"
  # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is 2 GB of memory.
  # In CI the random seed is fixed, so a red run can be replayed; locally each run explores anew.
  seed=()
  [ "${CI:-}" = true ] && seed=(-seed=1)
  if ! "$dir/tests/fuzz/fuzz_$target" "${seed[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/findings/$target/" \
    "$dir/corpus/$target" "${inputs[@]}" >"$log" 2>&1; then
    status=1
    echo "==> fuzz_$target: FINDING (log: $log)"
    grep -E "ERROR|invariant|SUMMARY|Test unit written" "$log" | head -20 || tail -30 "$log"
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  echo "==> fuzz_$target: ${seconds} s, ${execs:-?} executions," \
    "corpus $(find "$dir/corpus/$target" -type f | wc -l) inputs"
done
exit $status
