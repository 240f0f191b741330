#!/usr/bin/env bash
# Builds the demo images the docker tests, benchmarks and demo use: the demo app linked
# statically, in images FROM scratch (no registry is needed or reachable):
#   slipway-demo:v1   release v1, no HEALTHCHECK
#   slipway-demo:v2   release v2, HEALTHCHECK through `slipway-demo-app --probe`
#   slipway-demo:v3   release v3 whose /health fails, same HEALTHCHECK (turns unhealthy)
# Each listens on 8080 inside the container. Idempotent and cheap when nothing changed:
# an image is rebuilt only when its `slipway.test.build` label is not the hash of the
# binary and this script (which holds the Dockerfile).
# Prints `tag image-id` per image.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/target/static"
bin="$target/x86_64-unknown-linux-gnu/debug/slipway-demo-app"

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "docker-images.sh: the Docker daemon does not answer (DOCKER_HOST=${DOCKER_HOST:-unset}):" >&2
  docker version >&2 || true
  exit 1
fi

mkdir -p "$target"
# One build at a time: test processes run this in parallel.
exec 9>"$target/docker-images.lock"
flock 9

# Its own target dir, so the static flags do not invalidate the normal build.
unset CARGO_ENCODED_RUSTFLAGS
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet -p slipway-demo-app \
  --target x86_64-unknown-linux-gnu --target-dir "$target" --manifest-path "$root/Cargo.toml"
hash="$(cat "$bin" "$0" | sha256sum | cut -d' ' -f1)"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/slipway-demo-app"

healthcheck='HEALTHCHECK --interval=250ms --timeout=5s --start-period=1s --retries=3 CMD ["/slipway-demo-app", "--probe", "http://127.0.0.1:8080/health"]'
build() { # tag, extra CMD arguments (JSON list items), Dockerfile lines
  local tag="$1" extra="$2" lines="$3"
  local have
  have="$(docker image inspect -f '{{index .Config.Labels "slipway.test.build"}}' "slipway-demo:$tag" 2>/dev/null || true)"
  if [ "$have" != "$hash" ]; then
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY slipway-demo-app /slipway-demo-app
EXPOSE 8080
ENTRYPOINT ["/slipway-demo-app"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--release", "$tag"$extra]
$lines
LABEL slipway.test.build="$hash"
DOCKERFILE
    local old
    old="$(docker image inspect -f '{{.Id}}' "slipway-demo:$tag" 2>/dev/null || true)"
    docker build --quiet --tag "slipway-demo:$tag" "$ctx" >/dev/null 2>"$ctx/build.err" || {
      cat "$ctx/build.err" >&2
      exit 1
    }
    # The image the tag left behind, unless a container still uses it.
    if [ -n "$old" ]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
  fi
  echo "$tag $(docker image inspect -f '{{.Id}}' "slipway-demo:$tag")"
}

build v1 "" ""
build v2 "" "$healthcheck"
build v3 ', "--fail-health"' "$healthcheck"
