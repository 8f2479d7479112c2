#!/usr/bin/env bash
# Benchmarks (not tests): latency of the user endpoints through the local server, and the
# stripped size of one Lambda function as it is packaged.
#
#   infra/bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> latency through the local server (embedded backend, loopback HTTP)"
cargo bench -p bazaar-tests --bench api

echo
echo "==> users-me-get built with the packaging profile (LTO, one codegen unit, stripped)"
cargo build --profile lambda-release -p bazaar-functions --bin users-me-get
size=$(stat -c %s target/lambda-release/users-me-get)
echo "users-me-get: $size bytes ($((size / 1024)) KiB) for $(rustc -vV | sed -n 's/^host: //p')"
