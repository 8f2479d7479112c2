#!/usr/bin/env bash
# Load test of the local server: builds `bazaar` (release), starts it on a free loopback port
# with a fresh data directory, seeds an admin, a category and products with plenty of
# stock, runs infra/locustfile.py headless (browse, view, order + pay), prints requests/s,
# p50/p99 and failures per endpoint, and stops the server and deletes its data on exit.
#
#   infra/load.sh                                   # 60 s, 20 users
#   LOAD_SECONDS=300 LOAD_USERS=50 infra/load.sh
#
# Fails (exit 1) when more than LOAD_MAX_ERROR_PCT percent of the requests failed.
#
# Environment (defaults in brackets):
#   LOAD_SECONDS [60]        seconds of load (spawning included)
#   LOAD_USERS [20]          simulated users
#   LOAD_SPAWN_RATE [2]      users started per second (each registers: Argon2id)
#   LOAD_PRODUCTS [50]       products seeded
#   LOAD_MAX_ERROR_PCT [1]   failure rate, in percent, above which the run fails
#   LOAD_WAIT_MIN, LOAD_WAIT_MAX [0.5, 1.5]  seconds a user waits between tasks
#   LOAD_NICE [10]           niceness of the build, the server and locust
#   LOAD_BUILD [1]           0: use target/release/bazaar as it is, do not run cargo
#   LOAD_RESULTS_DIR [unset] where to copy locust's CSV files and the server log
#   LOAD_HEAT [0]            1: record the store's reads and writes per partition key during
#                            the run and print the partition-heat model (infra/heat_model.py)
#                            scaled to HEAT_ORDERS_PER_SECOND [10000] orders/s and
#                            HEAT_READS_PER_SECOND [50000] catalogue reads/s
#   LOAD_BINARY [unset]      run this bazaar binary (e.g. a debug build) instead of building
#                            target/release/bazaar; only the heat model's mix, not its
#                            latencies, is worth reading from a debug build
#   BAZAAR_LOG [warn]        the server's log filter
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"

seconds="${LOAD_SECONDS:-60}"
users="${LOAD_USERS:-20}"
spawn_rate="${LOAD_SPAWN_RATE:-2}"
products="${LOAD_PRODUCTS:-50}"
max_error_pct="${LOAD_MAX_ERROR_PCT:-1}"
niceness="${LOAD_NICE:-10}"
bazaar="${LOAD_BINARY:-$root/target/release/bazaar}"
heat="${LOAD_HEAT:-0}"

for value in "$seconds" "$users" "$products" "$niceness"; do
  [[ "$value" =~ ^[0-9]+$ ]] || { echo "load.sh: expected a whole number, got '$value'" >&2; exit 2; }
done
[[ "$seconds" -ge 1 && "$users" -ge 1 && "$products" -ge 1 ]] ||
  { echo "load.sh: LOAD_SECONDS, LOAD_USERS and LOAD_PRODUCTS must be at least 1" >&2; exit 2; }

step() { printf '\n==> %s\n' "$*"; }
run_nice() { nice -n "$niceness" "$@"; }

step "locust"
if ! "$python" -m locust --version >/dev/null 2>&1; then
  "$python" -m pip install --quiet --disable-pip-version-check locust
fi
"$python" -m locust --version

if [[ "${LOAD_BUILD:-1}" != 0 && -z "${LOAD_BINARY:-}" ]]; then
  step "cargo build --release --bin bazaar"
  run_nice cargo build --release --bin bazaar
fi
[[ -x "$bazaar" ]] || { echo "load.sh: $bazaar is missing (build it, or unset LOAD_BUILD)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/bazaar-load.XXXXXX")"
server_pid=""
locust_pid=""
# Stops the server: TERM (it finishes what it is doing and, with LOAD_HEAT=1, writes its
# counts), then KILL after $1 tenths of a second.
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq "$1"); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
cleanup() {
  if [[ -n "$locust_pid" ]] && kill -0 "$locust_pid" 2>/dev/null; then
    kill -TERM "$locust_pid" 2>/dev/null || true
    wait "$locust_pid" 2>/dev/null || true
  fi
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    stop_server 50
  fi
  if [[ -n "${LOAD_RESULTS_DIR:-}" ]]; then
    mkdir -p "$LOAD_RESULTS_DIR"
    cp "$work"/load_* "$work/server.log" "$work"/heat.json "$LOAD_RESULTS_DIR"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export BAZAAR_DATA_DIR="$work/data"
export BAZAAR_LOG="${BAZAAR_LOG:-warn}"
# Every simulated shopper calls from 127.0.0.1, so the per-client rate limits (which would
# treat them as one client) and the unpaid-order limit's defaults are lifted for the run.
for limit in LOGIN REGISTER PAY SUBSCRIBE VERIFY; do
  export "BAZAAR_RATE_LIMIT_$limit=off"
done
export BAZAAR_MAX_PENDING_ORDERS="${BAZAAR_MAX_PENDING_ORDERS:-1000}"
unset BAZAAR_BACKEND BAZAAR_TABLE BAZAAR_ADMIN_EMAIL BAZAAR_ADMIN_PASSWORD BAZAAR_PUBLIC_URL
admin_email="admin@example.com"
admin_password="$("$python" -c 'import secrets; print(secrets.token_urlsafe(24))')"

step "admin account (fresh data directory $BAZAAR_DATA_DIR)"
printf '%s' "$admin_password" | run_nice "$bazaar" create-admin --email "$admin_email"

step "bazaar serve on a free loopback port"
# Port 0: the kernel picks a free port, the server prints the address it bound (and uses
# it as BAZAAR_PUBLIC_URL), so there is no race between choosing a port and binding it.
# `nice` execs the server, so $! is the server itself (a shell function run in the
# background would be a subshell, and killing it would leave the server running).
[[ "$heat" == 1 ]] && export BAZAAR_HEAT_FILE="$work/heat.json"
BAZAAR_LISTEN=127.0.0.1:0 nice -n "$niceness" "$bazaar" serve >"$work/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 300); do
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "load.sh: the server exited" >&2; exit 1; }
  base="$(sed -n 's|^Bazaar listening on \(http://127\.0\.0\.1:[0-9]*\) .*|\1|p' "$work/server.log" | head -n 1)"
  if [[ -n "$base" ]] && [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/health")" == 200 ]]; then
    break
  fi
  base=""
  sleep 0.1
done
[[ -n "$base" ]] || { cat "$work/server.log" >&2; echo "load.sh: no healthy server after 30 s" >&2; exit 1; }
echo "server at $base (pid $server_pid)"

# POST a JSON body (read from stdin, so that passwords stay off the command line); prints
# the response body; fails unless the status is the expected one.
post_json() {
  local path="$1" expected="$2" token="${3:-}" status
  local -a auth=()
  [[ -z "$token" ]] || auth=(-H "authorization: Bearer $token")
  status="$(curl -sS -o "$work/response" -w '%{http_code}' -X POST "$base/api/v1$path" \
    -H 'content-type: application/json' "${auth[@]}" --data-binary @-)"
  if [[ "$status" != "$expected" ]]; then
    echo "load.sh: POST $path answered $status, expected $expected: $(cat "$work/response")" >&2
    return 1
  fi
  cat "$work/response"
}
json_field() { "$python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

step "seed: a category and $products products"
token="$("$python" -c 'import json, sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' \
  "$admin_email" "$admin_password" | post_json /users/login 200 | json_field access_token)"
category_id="$(echo '{"name": "Load test"}' | post_json /categories 201 "$token" | json_field id)"
# Names from the word lists of infra/locustfile.py, so that its searches find products.
colours=(red blue green black white)
things=(shirt shoe lamp mug book chair scarf kettle clock bag)
for i in $(seq "$products"); do
  colour="${colours[i % ${#colours[@]}]}"
  thing="${things[(i / ${#colours[@]}) % ${#things[@]}]}"
  printf '{"sku": "LOAD-%05d", "name": "%s %s %d", "description": "A %s %s for the load test.", "category_id": "%s", "price": {"amount": %d, "currency": "USD"}, "stock": 1000000}' \
    "$i" "${colour^}" "$thing" "$i" "$colour" "$thing" "$category_id" "$((999 + (i * 37 % 50) * 100))" |
    post_json /products 201 "$token" >/dev/null
done
echo "seeded $products products (stock 1000000 each) in category $category_id"

step "locust: $users users (spawned at $spawn_rate/s), ${seconds}s, against $base"
# In the background and waited for, so that a signal to this script is handled at once
# (the EXIT trap stops locust too); `nice` execs python, so $! is locust itself.
LOAD_SUMMARY_JSON="$work/load_summary.json" nice -n "$niceness" "$python" -m locust \
  -f "$root/infra/locustfile.py" --headless --only-summary \
  -u "$users" -r "$spawn_rate" -t "${seconds}s" --stop-timeout 10 \
  --host "$base" --csv "$work/load" --loglevel WARNING \
  >"$work/locust.log" 2>&1 </dev/null &
locust_pid=$!
load_started="$(date +%s)"
locust_status=0
wait "$locust_pid" || locust_status=$?
locust_pid=""
if [[ ! -s "$work/load_summary.json" ]]; then
  cat "$work/locust.log" >&2
  echo "load.sh: locust wrote no statistics (exit status $locust_status)" >&2
  exit 1
fi

step "results"
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "load.sh: the server died during the run; its log:" >&2
  tail -n 50 "$work/server.log" >&2
  exit 1
fi
verdict=0
"$python" - "$work/load_summary.json" "$max_error_pct" "$users" "$seconds" <<'EOF' || verdict=$?
import json, sys

path, max_pct, users, seconds = sys.argv[1:5]
summary = json.load(open(path))

def cell(value, digits=0):
    return "-" if value is None else f"{value:.{digits}f}"

def line(row):
    return (row["type"], row["name"], str(row["requests"]), str(row["failures"]),
            cell(row["rps"], 1), cell(row["p50"]), cell(row["p99"]), cell(row["max"]))

header = ("Type", "Name", "Requests", "Fails", "Req/s", "p50 ms", "p99 ms", "Max ms")
body = [line(row) for row in summary["endpoints"]]
footer = [line(summary["http"]), line(summary["all"])]
widths = [max(len(cells[i]) for cells in [header] + body + footer) for i in range(len(header))]
def show(cells):
    print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(cells, widths))))
for cells in [header] + body:
    show(cells)
print("  ".join("-" * w for w in widths))
for cells in footer:
    show(cells)

if summary["failures"]:
    print("\nFailures (occurrences, request, error):")
    for row in summary["failures"]:
        print(f"  {row['occurrences']:>6}  {row['method']} {row['name']}: {row['error'][:300]}")
if summary["exceptions"]:
    print("\nExceptions raised in the locustfile (count, message):")
    for row in summary["exceptions"]:
        print(f"  {row['count']:>6}  {row['message'][:300]}")

total = summary["all"]
count, failed = total["requests"], total["failures"]
pct = 100.0 * failed / count if count else 100.0
print(f"\n{users} users, {seconds} s: {count} requests, {failed} failed ({pct:.2f}%), "
      f"{total['rps']:.1f} req/s overall; threshold {max_pct}%")
if count == 0:
    print("FAIL: no requests were made", file=sys.stderr)
    sys.exit(1)
if summary["exceptions"]:
    print("FAIL: the locustfile raised exceptions", file=sys.stderr)
    sys.exit(1)
if pct > float(max_pct):
    print(f"FAIL: error rate {pct:.2f}% is above {max_pct}%", file=sys.stderr)
    sys.exit(1)
print("PASS")
EOF
if [[ "$verdict" != 0 ]]; then
  echo "--- last lines of the server log ($BAZAAR_LOG) ---" >&2
  tail -n 20 "$work/server.log" >&2
  exit "$verdict"
fi

if [[ "$heat" == 1 ]]; then
  step "partition heat (infra/heat_model.py)"
  # The server writes its counts when it stops.
  stop_server 100
  [[ -s "$work/heat.json" ]] || { tail -n 20 "$work/server.log" >&2; echo "load.sh: the server wrote no heat counts" >&2; exit 1; }
  "$python" "$root/infra/heat_model.py" "$work/heat.json" "$work/load_summary.json" \
    --from "$((load_started + 3))" --to "$((load_started + seconds))" --run-seconds "$seconds" \
    --shards "${BAZAAR_WRITE_SHARDS:-32}" --invoice-series "${BAZAAR_INVOICE_SERIES:-1}" \
    --orders-per-second "${HEAT_ORDERS_PER_SECOND:-10000}" \
    --reads-per-second "${HEAT_READS_PER_SECOND:-50000}"
fi
