#!/usr/bin/env bash
# Scheduling overhead of pipelines (issue 8): 200 jobs of `true` in a 10-wide DAG, minus
# the time to spawn the same 200 processes without a pipeline, per job. Prints its
# figures and the ratio to that baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p slipway-server --bench pipeline
