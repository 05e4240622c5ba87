#!/usr/bin/env bash
# The npm packages of a test tool, installed from its lock file into a folder of the build (once;
# again when the lock file changes). The npm registry is needed the first time only.
#   tests/npm_ci.sh PACKAGE_DIR DEST_DIR
set -euo pipefail
src=$1 dir=$2
mkdir -p "$dir"
if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
  command -v npm > /dev/null || { echo "npm is missing (Debian: npm)" >&2; exit 1; }
  rm -f "$dir/package-lock.json"
  cp "$src/package.json" "$dir/"
  cp "$src/package-lock.json" "$dir/package-lock.json.new"
  mv "$dir/package-lock.json.new" "$dir/package-lock.json"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error > npm.log 2>&1) || {
    cat "$dir/npm.log" >&2
    rm -f "$dir/package-lock.json"
    echo "npm ci failed in $dir (the npm registry is needed once)" >&2
    exit 1
  }
fi
