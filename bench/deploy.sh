#!/usr/bin/env bash
# Control-plane overhead of a deployment and failed requests across 50 blue-green
# deployments + 50 rollbacks under load (issue 2). Prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p slipway-demo-app
exec cargo bench -p slipway-server --bench deploy
