#!/usr/bin/env bash
# Install what the build (`--build`) or the build and the test suite (no argument) need on a
# fresh Debian/Ubuntu machine.
# Idempotent: packages already present are not touched; nothing is installed by hand elsewhere.
# Runs apt-get as root, or through sudo when not root.
set -euo pipefail

# What building netmon needs (`--build` installs only these: the README's main command).
BUILD_PACKAGES=(
  clang         # build.rs compiles the ebpf source's kernel programs (without it: no --source ebpf)
)
# What the test suite needs on top (each line says why).
TEST_PACKAGES=(
  tmux          # `netmon top` is tested as a terminal program
  sqlite3       # benchmarks compare against the sqlite3 shell; the browser end-to-end test
                # (tests/cli/e2e.rs) reads the database with it
  systemd       # `systemd-analyze verify` checks the units `netmon service` writes, and
                # tests/systemd-user runs a private systemd user manager (PID 1 need not be systemd)
  iproute2      # namespace tests (the accuracy test, the ebpf tests): `ip netns`, veth pairs, ss
  util-linux    # the container test (tests/cli/containers.rs): `unshare` gives the container its
                # pid namespace, `nsenter` runs the recorder in the host namespace
  procps        # … and `sysctl` lets its host namespace forward (not in minimal Debian images)
  python3       # namespace tests: the traffic workloads (tests/netns/traffic.py,
                # ../shared/bench/accuracy/{server,workload}.py)
  nodejs        # the browser extension's tests run under node's own test runner
  chromium      # the extension and `netmon report html` are tested in real headless Chromium
                # (never a downloaded browser)
  firefox-esr   # … and in real headless Firefox, over its built-in WebDriver BiDi
  tzdata        # the report is tested in other time zones (TZ=Asia/Kolkata, America/New_York),
                # and daily rows in one that skips midnight (TZ=America/Santiago)
  prometheus    # /metrics is scraped by a real Prometheus, and by one in agent mode that
                # remote-writes to a second (tests/cli/prometheus.rs); the tests start their own
                # on free loopback ports and never use the package's service. promtool (same
                # package) lints the exposition
)

build_only=false
[ "${1:-}" = "--build" ] && build_only=true
PACKAGES=("${BUILD_PACKAGES[@]}")
if ! $build_only; then
  PACKAGES+=("${TEST_PACKAGES[@]}")
  # npm comes with nodejs from some sources and as its own Debian package otherwise.
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

$build_only && exit 0

# The extension's development tools (extension/package-lock.json: playwright-core to drive
# Debian's chromium, web-ext to lint the Firefox side, ws to talk BiDi to Firefox). Re-run only
# when the lock file changed.
ext="$(dirname "$0")/../extension"
if ! cmp -s "$ext/package-lock.json" "$ext/node_modules/.netmon-installed-lock" 2>/dev/null; then
  echo "install-deps: npm ci in extension/" >&2
  (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$ext/package-lock.json" "$ext/node_modules/.netmon-installed-lock"
fi
