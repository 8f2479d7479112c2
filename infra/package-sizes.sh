#!/usr/bin/env bash
# Build the Lambda packages with the README's package command and check their zipped sizes.
#
#   infra/package-sizes.sh                      # every function, plus the reference function
#   infra/package-sizes.sh --bin products-get   # only these functions (repeat --bin)
#   infra/package-sizes.sh --no-build           # only read the zips already built
#   infra/package-sizes.sh --no-check           # print the table, never fail on a budget
#
# The functions are built from `functions/` (`cargo lambda build --release --output-format
# zip`), so that only that package and the features it asks for are selected; the reference
# (bench/lambda-reference: a minimal lambda_http + DynamoDB GetItem function) is built the same
# way from its own directory. Zips land in $CARGO_TARGET_DIR/lambda/<name>/bootstrap.zip
# (default target dir: ./target). Extra cargo-lambda flags (e.g. --arm64) go in
# PACKAGE_BUILD_FLAGS.
#
# Budgets (exit status 1, naming what is over): every function at most 4,000,000 bytes zipped;
# products-get at most 1.2 times the reference.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
reference=reference-products-get
max_bytes=4000000
max_ratio=1.2

bins=()
build=true
check=true
while (($#)); do
  case "$1" in
    --bin) bins+=("${2:?--bin needs a binary name}"); shift 2 ;;
    --no-build) build=false; shift ;;
    --no-check) check=false; shift ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "package-sizes: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ((${#bins[@]} == 0)); then
  for source in "$root"/functions/src/bin/*.rs; do
    bins+=("$(basename "$source" .rs)")
  done
fi

if "$build"; then
  if ! cargo lambda --version >/dev/null 2>&1; then
    echo "package-sizes: installing cargo-lambda (pip)" >&2
    "${PYTHON:-python3}" -m pip install cargo-lambda >&2
  fi
  bin_flags=()
  for bin in "${bins[@]}"; do bin_flags+=(--bin "$bin"); done
  started=$SECONDS
  # shellcheck disable=SC2086 # PACKAGE_BUILD_FLAGS is a list of flags.
  (cd "$root/functions" &&
    cargo lambda build --release --output-format zip ${PACKAGE_BUILD_FLAGS:-} "${bin_flags[@]}")
  functions_seconds=$((SECONDS - started))
  started=$SECONDS
  # shellcheck disable=SC2086
  (cd "$root/bench/lambda-reference" &&
    cargo lambda build --release --output-format zip ${PACKAGE_BUILD_FLAGS:-})
  echo "package-sizes: built ${#bins[@]} function(s) in ${functions_seconds} s, the reference in $((SECONDS - started)) s" >&2
fi

zip_of() { echo "$target/lambda/$1/bootstrap.zip"; }
size_of() { stat -c %s "$(zip_of "$1")"; }

rows=()
missing=()
for name in "${bins[@]}" "$reference"; do
  if [[ -f "$(zip_of "$name")" ]]; then
    rows+=("$(size_of "$name") $name")
  else
    missing+=("$name")
  fi
done

printf '%-34s %12s %9s\n' package "zip bytes" "zip MB"
printf '%s\n' "${rows[@]}" | sort -n | while read -r bytes name; do
  label="$name"
  [[ "$name" == "$reference" ]] && label="$name (reference)"
  printf '%-34s %12s %9.2f\n' "$label" "$bytes" "$(echo "$bytes / 1000000" | bc -l)"
done

over=()
for name in "${missing[@]}"; do over+=("$name: no package at $(zip_of "$name")"); done
for name in "${bins[@]}"; do
  [[ -f "$(zip_of "$name")" ]] || continue
  bytes="$(size_of "$name")"
  ((bytes <= max_bytes)) || over+=("$name: $bytes bytes zipped > $max_bytes")
done
if [[ " ${bins[*]} " == *" products-get "* && -f "$(zip_of products-get)" && -f "$(zip_of "$reference")" ]]; then
  ratio="$(echo "$(size_of products-get) / $(size_of "$reference")" | bc -l)"
  printf 'products-get is %.2fx the reference (budget %sx)\n' "$ratio" "$max_ratio"
  if (($(echo "$ratio > $max_ratio" | bc -l))); then
    over+=("products-get: $(printf '%.2f' "$ratio")x the reference > ${max_ratio}x")
  fi
fi

if ((${#over[@]})); then
  printf 'over budget: %s\n' "${over[@]}" >&2
  "$check" && exit 1
fi
exit 0
