#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API (issue 14): starts `slipway server` on loopback in
# a temporary directory, runs schemathesis against its own OpenAPI document with a bounded
# number of examples per operation, and stops the server. The figures are schemathesis's
# summary: server errors, undocumented status codes, schema-valid requests refused.
#
#   bench/api-fuzz.sh [MAX_EXAMPLES]     (default 100; needs `schemathesis` on PATH, or
#                                         SCHEMATHESIS=/path/to/schemathesis)
set -euo pipefail

examples=${1:-100}
st=${SCHEMATHESIS:-schemathesis}
if ! command -v "$st" >/dev/null; then
    echo "schemathesis is not installed: pip install schemathesis" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --manifest-path "$root/Cargo.toml" -p slipway -p slipway-demo-app
bin="$root/target/debug"

dir=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    # The app instances outlive the server by design; these are ours, found by their log
    # files under our temporary directory.
    for fd in /proc/[0-9]*/fd/1; do
        if [[ $(readlink "$fd" 2>/dev/null) == "$dir"/* ]]; then
            pid=${fd#/proc/}; kill -9 "${pid%%/*}" 2>/dev/null || true
        fi
    done
    rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/slipway.yaml" <<YAML
version: 1
server:
  listen: 127.0.0.1:$port
  data_dir: data
  tick: 50ms
apps:
  web:
    run: "'$bin/slipway-demo-app' --port {port} --release {version}"
    health: { path: /health, interval: 100ms, timeout: 1s, start_period: 5s }
environments:
  staging:
    listen: 127.0.0.1:0
    strategy: blue-green
  production:
    listen: 127.0.0.1:0
    requires: [staging]
    protection:
      reviewers: [alice]
      required_approvals: 1
users:
  alice: { role: approver }
YAML
"$bin/slipway" server --config "$dir/slipway.yaml" 2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 100); do
    [[ -s $dir/data/admin.token ]] && curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done
token=$(cat "$dir/data/admin.token")

# The event stream never ends by design: a fuzzer cannot read a whole answer from it.
# schemathesis keeps a cache in its working directory: the temporary one, not the repo.
cd "$dir"
started=$(date +%s)
set +e
"$st" --config-file "$root/bench/api-fuzz.toml" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --exclude-path /api/v1/events \
    --checks all \
    --generation-deterministic \
    --no-color 2>&1 | tee "$dir/schemathesis.txt"
status=${PIPESTATUS[0]}
set -e
echo
echo "schemathesis: exit $status after $(( $(date +%s) - started ))s, $examples examples per operation"
if grep -q "panicked" "$dir/server.log"; then
    echo "the server panicked:" && grep -A3 panicked "$dir/server.log"
    status=1
fi
exit "$status"
