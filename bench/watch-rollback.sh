#!/usr/bin/env bash
# Post-deploy watch: time from the first failing response of a release that turned bad
# after success to traffic back on the previous release (watch interval 250 ms, median of
# 10, target < 1 s), and failed requests of users on other releases meanwhile (target 0).
# Prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p slipway-demo-app
exec cargo bench -p slipway-server --bench watch_rollback
