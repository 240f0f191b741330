#!/usr/bin/env bash
# OFREP evaluations per second over HTTP on one worker: `slipway server` (release build,
# TOKIO_WORKER_THREADS=1) with a 30% rollout flag, wrk posting single evaluations with a
# different targeting key per request. Target: over 20,000/s.
#
#   bench/flags-http.sh            # DURATION=10s CONNECTIONS=32 by default
#
# Needs wrk (apt-get install -y wrk) and curl.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
target=20000
cd "$repo"
cargo build --release -p slipway >&2
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/slipway.yaml" <<YAML
version: 1
server:
  listen: 127.0.0.1:$port
  data_dir: data
environments:
  production:
    listen: 127.0.0.1:0
YAML
(cd "$work" && TOKIO_WORKER_THREADS=1 exec "$repo/target/release/slipway" server --config slipway.yaml 2>"$work/server.log") &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/data/admin.token" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
token=$(cat "$work/data/admin.token")
curl -sf -X PUT "http://127.0.0.1:$port/api/v1/flags/production/checkout" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"variants":[{"name":"on","value":true,"weight":100},{"name":"off","value":false}],"default_variant":"off","rollout":30}' >/dev/null
cat > "$work/ofrep.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["X-Slipway-Environment"] = "production"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/ofrep/v1/evaluate/flags/checkout", nil, '{"context":{"targetingKey":"user-' .. n .. '"}}')
end
local non2xx = 0
response = function(status) if status ~= 200 then non2xx = non2xx + 1 end end
done = function(summary) io.write(string.format("RESULT %.0f %d %d\n", summary.requests / (summary.duration / 1e6), summary.errors.status, non2xx)) end
LUA
out=$(wrk -t1 -c"$connections" -d"$duration" -s "$work/ofrep.lua" "http://127.0.0.1:$port")
echo "$out" | grep -E 'Latency|Requests/sec' >&2
read -r _ rps status_errors _ <<<"$(echo "$out" | grep '^RESULT')"
echo "OFREP single evaluations over HTTP, one server worker, $connections connections, $duration"
awk -v r="$rps" -v t="$target" -v e="$status_errors" 'BEGIN {
    printf "  %10.0f/s   target %6d/s   ratio %.2fx   %s   (non-2xx: %d)\n", r, t, r / t, (r > t && e == 0) ? "ok" : "BELOW TARGET", e }'
