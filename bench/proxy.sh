#!/usr/bin/env bash
# Cost of our router's 90/10 split next to HAProxy, nginx and no proxy, in one run
# (bench/proxy-baseline.sh does the measuring; read it for what each figure means).
#
#   bench/proxy.sh      # builds the release binary, then `slipway router --listen … --backend …`
#
# Needs: apt-get update && apt-get install -y wrk haproxy nginx-light
# Env passed through to the baseline: ROUNDS, DURATION, CONNECTIONS.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build --release -p slipway
SLIPWAY_BIN="$repo/target/release/slipway" bash "$repo/bench/proxy-baseline.sh"
