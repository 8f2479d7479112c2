#!/usr/bin/env bash
# Bazaar's test command: everything CI checks, with its own set-up, on a machine that has
# only Rust and Python 3.
#
#   infra/test.sh
#
# 1. installs the Python tools the tests use (moto's server, cfn-lint) into the user's
#    Python if they are missing;
# 2. starts one moto server on a free loopback port for the AWS adapter tests, and stops it
#    on exit, whatever happens;
# 3. checks formatting and lints, runs every Rust test (both backends), and lints the
#    infrastructure descriptions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }

step "Python tools (moto server, cfn-lint)"
if ! "$python" -c 'import moto.server, flask_cors, cfnlint' 2>/dev/null; then
  "$python" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1' 'cfn-lint>=1'
fi

step "moto (DynamoDB, SQS, S3 and SSM on loopback)"
state="$(mktemp -d)"
pid_file="$state/moto.pid"
cleanup() { "$root/infra/moto-stop.sh" "$pid_file" || true; rm -rf "$state"; }
trap cleanup EXIT
BAZAAR_TEST_AWS_ENDPOINT="$("$root/infra/moto-start.sh" "$pid_file")"
export BAZAAR_TEST_AWS_ENDPOINT
echo "moto at $BAZAAR_TEST_AWS_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (embedded backend and AWS adapters against moto)"
cargo test --workspace --locked

step "cfn-lint template.yaml monitoring.yaml"
# Through the module, so that a pip install whose scripts are not on PATH still works.
"$python" -c 'import sys; from cfnlint.runner import main; sys.argv = ["cfn-lint", "template.yaml", "monitoring.yaml"]; sys.exit(main())'

step "terraform fmt -check"
if command -v terraform >/dev/null 2>&1; then
  terraform fmt -check -recursive terraform
else
  echo "terraform is not installed: formatting of terraform/ NOT checked" >&2
fi

step "all checks passed"
