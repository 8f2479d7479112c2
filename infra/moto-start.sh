#!/usr/bin/env bash
# Start a local moto server (an in-process fake of the AWS APIs) for tests of the AWS adapters.
#
#   infra/moto-start.sh [PID_FILE]   -> prints the endpoint URL (e.g. http://127.0.0.1:41234)
#
# The server listens on a free port on 127.0.0.1 and runs in the background; its pid goes to
# PID_FILE (default: infra/.moto.pid) and its log next to it (<PID_FILE>.log). Stop it with
# infra/moto-stop.sh [PID_FILE]. Needs `pip install 'moto[server]'`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pid_file="${1:-$here/.moto.pid}"
log_file="$pid_file.log"
python="${PYTHON:-python3}"

if ! "$python" -c 'import moto.server' 2>/dev/null; then
  echo "moto-start: moto is not installed; run: $python -m pip install 'moto[server]'" >&2
  exit 1
fi

if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "moto-start: already running with pid $(cat "$pid_file") (see $pid_file)" >&2
  exit 1
fi

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
endpoint="http://127.0.0.1:$port"

mkdir -p "$(dirname "$pid_file")"
# setsid: the server outlives this script and gets its own process group.
# moto_server.py: moto with each request atomic, as DynamoDB's are (see that file).
setsid "$python" "$here/moto_server.py" -H 127.0.0.1 -p "$port" >"$log_file" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pid_file"

# Wait (up to ~30 s) until it answers.
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "moto-start: the server exited; its log ($log_file):" >&2
    cat "$log_file" >&2 || true
    rm -f "$pid_file"
    exit 1
  fi
  if "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$endpoint" 2>/dev/null; then
    echo "$endpoint"
    exit 0
  fi
  sleep 0.1
done

echo "moto-start: no answer from $endpoint after 30 s; stopping it" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pid_file"
exit 1
