#!/usr/bin/env bash
# Stop the moto server started by infra/moto-start.sh.
#
#   infra/moto-stop.sh [PID_FILE]    (default: infra/.moto.pid)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pid_file="${1:-$here/.moto.pid}"

if [[ ! -f "$pid_file" ]]; then
  echo "moto-stop: no pid file at $pid_file; nothing to stop" >&2
  exit 0
fi

pid="$(cat "$pid_file")"
if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  # Give it up to 5 s to exit, then insist.
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
fi
rm -f "$pid_file" "$pid_file.log"
