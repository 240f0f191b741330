#!/usr/bin/env bash
# Canary detect-to-revert time (a 10% canary with 50% errors, analysis every 250 ms) and
# failed requests across 100 canary promotions + 100 aborts under load. Prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p slipway-demo-app
exec cargo bench -p slipway-server --bench canary
