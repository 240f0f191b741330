#!/usr/bin/env bash
# The console's pages with 10,000 deployments and 3,000 pipeline runs in a real SQLite
# file (issue 10): server time per page, median and p90, and the ratio to the 20 ms
# target. Prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p slipway-server --bench console
