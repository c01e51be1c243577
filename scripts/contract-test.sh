#!/usr/bin/env bash
# Contract test: schemathesis (from PyPI, in .tools/venv) fuzzes a running API server against
# its own OpenAPI document. Bounded: CONTRACT_MAX_TIME seconds of generation (default 60).
#
# Checks: all but positive_data_acceptance — the document cannot express every rule a valid
# meetup obeys (IANA zone names, days vs. slots, dates within a year), so some schema-valid
# bodies are rightly refused with 422. Everything else must hold: no 5xx, documented statuses
# and content types only, responses that match their schemas, bad data refused.
set -euo pipefail
cd "$(dirname "$0")/.."
max_time=${CONTRACT_MAX_TIME:-60}
venv=.tools/venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build -q -p api-server
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/debug/api-server --bind "127.0.0.1:$port" --data-dir "$data" \
  --write-rate-per-minute 0 --read-rate-per-minute 0 --meetups-per-client-per-day 0 \
  >"$data/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
"$venv/bin/st" run "http://127.0.0.1:$port/api/openapi.json" \
  --wait-for-schema 30 \
  --checks all --exclude-checks positive_data_acceptance \
  --exclude-path-regex 'live$' \
  --max-time "$max_time" \
  --seed "${CONTRACT_SEED:-1}"
