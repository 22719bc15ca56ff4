#!/usr/bin/env bash
# Install what the build and the test suite need on a fresh Debian/Ubuntu machine.
# Idempotent: packages already present are not touched; nothing is installed by hand elsewhere.
# Runs apt-get as root, or through sudo when not root.
set -euo pipefail

# Debian packages the tests use (each line says why).
PACKAGES=(
  tmux          # `netmon top` is tested as a terminal program
  sqlite3       # benchmarks compare against the sqlite3 shell
  systemd       # `systemd-analyze verify` checks the units `netmon service` writes, and
                # tests/systemd-user runs a private systemd user manager (PID 1 need not be systemd)
  iproute2      # the accuracy test makes network namespaces and a veth pair (ip), and waits on ss
  python3       # the accuracy test runs ../shared/bench/accuracy/{server,workload}.py
)

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
