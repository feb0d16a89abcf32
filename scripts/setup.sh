#!/usr/bin/env bash
# Sets up a Debian 12 machine for mnemo: installs the apt packages (quiet when already there) and
# builds everything into build/. Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  librocksdb-dev libboost1.81-dev libboost-json1.81-dev libsimdjson-dev libcurl4-openssl-dev
  libyaml-cpp-dev catch2 libcli11-dev libseccomp-dev libzstd-dev libssl-dev libre2-dev
  bubblewrap
  libopenblas-dev
)
# Node.js runs the benchmark peers and client tests; any installed Node.js with npm will do.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The client tests' npm packages (tests/js), installed again only when the lock file changed.
if command -v npm >/dev/null 2>&1 &&
   ! [ tests/js/node_modules/.package-lock.json -nt tests/js/package-lock.json ]; then
  if ! npm_log=$(npm ci --prefix tests/js --no-audit --no-fund 2>&1); then
    echo "$npm_log" | tail -20 >&2
    # In CI every peer must be there: a test that would be skipped is a failure.
    case "${CI:-}" in
      ''|false|0) echo "setup: npm ci --prefix tests/js failed (above); the JavaScript client test will be skipped" >&2 ;;
      *) echo "setup: npm ci --prefix tests/js failed (above)" >&2; exit 1 ;;
    esac
  fi
fi

BUILD_DIR=${MNEMO_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja ${MNEMO_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "setup: built $BUILD_DIR/bin/mnemo"
