#!/usr/bin/env bash
# A private systemd user manager for tests, on machines whose PID 1 is not systemd (this VM,
# CI, containers). Needs root: it makes a mount namespace and a cgroup of its own.
#
#   manager.sh start DIR      start one; DIR/run is its XDG_RUNTIME_DIR; prints its pid
#   manager.sh stop DIR PID   ask it to exit (stopping its units), then remove its cgroups
#
# How it stays contained (a user manager run as root in the root cgroup moves every process
# on the machine into its own init.scope):
# - a fresh cgroup (netmon-test-*) in the unified and the named systemd hierarchies, the
#   manager moved into it, then a cgroup namespace, so that cgroup is all it can see;
# - a mount namespace with /sys/fs/cgroup remounted from inside that cgroup namespace, and a
#   tmpfs on /run/systemd holding the /run/systemd/system marker systemd wants to see.
# The environment of `start` (HOME, XDG_*) becomes the manager's.
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?directory}
say() { echo "systemd-user harness: $*" >&2; }

hierarchies() {
  # "path-under-/sys/fs/cgroup type" for the hierarchies systemd uses.
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo ". cgroup2"
  else
    [ -d /sys/fs/cgroup/unified ] && echo "unified cgroup2"
    [ -d /sys/fs/cgroup/systemd ] && echo "systemd name=systemd"
  fi
}

case "$cmd" in
start)
  [ "$(id -u)" = 0 ] || { say "needs root (a mount namespace and a cgroup of its own)"; exit 77; }
  for t in unshare /lib/systemd/systemd systemctl; do
    command -v "$t" >/dev/null || [ -x "$t" ] || { say "$t is missing"; exit 77; }
  done
  mkdir -p "$dir/run"
  chmod 700 "$dir/run"
  cg="netmon-test-$$"
  echo "$cg" > "$dir/cgroup"
  while read -r sub _; do
    mkdir "/sys/fs/cgroup/$sub/$cg"
  done < <(hierarchies)
  cat > "$dir/inner.sh" <<INNER
set -eu
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd; mount -t tmpfs tmpfs /run/systemd; }
mkdir /run/systemd/system
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
$(hierarchies | while read -r sub type; do
    if [ "$type" = cgroup2 ]; then
      echo "mkdir -p /sys/fs/cgroup/$sub; mount -t cgroup2 cgroup2 /sys/fs/cgroup/$sub"
    else
      echo "mkdir -p /sys/fs/cgroup/$sub; mount -t cgroup -o none,$type cgroup /sys/fs/cgroup/$sub"
    fi
  done)
exec /lib/systemd/systemd --user
INNER
  (
    while read -r sub _; do echo "$BASHPID" > "/sys/fs/cgroup/$sub/$cg/cgroup.procs"; done < <(hierarchies)
    export XDG_RUNTIME_DIR="$dir/run"
    exec unshare --mount --cgroup --propagation private sh "$dir/inner.sh"
  ) > "$dir/manager.log" 2>&1 < /dev/null &
  pid=$!
  for _ in $(seq 100); do
    [ -S "$dir/run/systemd/private" ] && break
    kill -0 "$pid" 2>/dev/null || { say "the manager exited: $(cat "$dir/manager.log")"; exit 1; }
    sleep 0.1
  done
  [ -S "$dir/run/systemd/private" ] || { say "no manager socket after 10 s"; kill -9 "$pid"; exit 1; }
  echo "$pid"
  ;;
stop)
  pid=${3:?pid}
  cg=$(cat "$dir/cgroup")
  XDG_RUNTIME_DIR="$dir/run" timeout 20 systemctl --user exit >/dev/null 2>&1 || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  # Whatever is left in its cgroups (it did not exit in time) is killed.
  while read -r sub _; do
    base="/sys/fs/cgroup/$sub/$cg"
    [ -d "$base" ] || continue
    for _ in 1 2 3; do
      procs=$(find "$base" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
      [ -z "$procs" ] && break
      kill -9 $procs 2>/dev/null || true
      sleep 0.2
    done
    find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$base" ] && { say "could not remove $base"; exit 1; }
  done < <(hierarchies)
  exit 0
  ;;
*) say "unknown command $cmd"; exit 2 ;;
esac
