#!/usr/bin/env bash
# Cost of our router's 90/10 split next to HAProxy and nginx (see proxy-baseline.sh).
#
#   bench/proxy.sh      # `slipway router --listen … --backend …` (the release binary)
#
# Needs: apt-get update && apt-get install -y wrk haproxy nginx-light
# Env passed through to the baseline: ROUNDS, DURATION, CONNECTIONS.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
baseline="$repo/../shared/bench/proxy-baseline.sh"
[ -x "$baseline" ] || [ -f "$baseline" ] || { echo "missing $baseline"; exit 2; }
cd "$repo"
args='--listen 127.0.0.1:$LISTEN_PORT --backend http://127.0.0.1:$UPSTREAM_V1=90 --backend http://127.0.0.1:$UPSTREAM_V2=10'
cargo build --release -p slipway
OUR_PROXY_CMD="$repo/target/release/slipway router $args" bash "$baseline"
