#!/usr/bin/env bash
# The Kubernetes manifests check (check.js), with its npm packages installed from the lock file
# into BUILD_DIR/kubernetes-check.
#   tests/kubernetes/run.sh BUILD_DIR THIMBLE_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1/kubernetes-check
"$here/../npm_ci.sh" "$here" "$dir"
cp "$here/check.js" "$dir/"
node "$dir/check.js" "$here/../../conf/kubernetes" "$2"
