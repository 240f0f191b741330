#!/usr/bin/env bash
# The docker driver's start-to-healthy time against the bare `docker run` (issue 7's
# physical limit), on the demo image FROM scratch. Prints both and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/docker-images.sh >/dev/null
exec cargo bench -p slipway-drivers --bench docker_start
