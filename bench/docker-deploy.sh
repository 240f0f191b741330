#!/usr/bin/env bash
# A docker app's deploy request to 100% traffic on the new container (blue-green) against
# the bare `docker run` until the app's health answers, median of 10 each (issue 7).
# Prints both medians and slipway's overhead (target < 150 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
bench/docker-images.sh >/dev/null
exec cargo bench -p slipway-server --bench docker_deploy
