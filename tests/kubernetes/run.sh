#!/usr/bin/env bash
# The Kubernetes manifests check (check.js), with its npm packages installed from the lock file
# into BUILD_DIR/kubernetes-check (once; again when the lock file changes).
#   tests/kubernetes/run.sh BUILD_DIR THIMBLE_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1/kubernetes-check
mkdir -p "$dir"
cp "$here/check.js" "$dir/"
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error > npm.log 2>&1) ||
    { cat "$dir/npm.log" >&2; echo "npm ci failed (the npm registry is needed once)" >&2; exit 1; }
fi
node "$dir/check.js" "$here/../../conf/kubernetes" "$2"
