#!/usr/bin/env bash
# Benchmarks (not tests): latency of the user endpoints through the local server. Package
# sizes and cold starts have their own scripts: infra/package-sizes.sh, infra/cold-start.sh.
#
#   infra/bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> latency through the local server (embedded backend, loopback HTTP)"
cargo bench -p bazaar-tests --bench api

