#!/bin/bash
# tests/slurm/down.sh: stop what up.sh started and remove its namespaces and
# bridge. Jobs still in the rig are cancelled, the nodes' sshd stopped, then
# every process left in a node's network namespace (slurmd, slurmstepd, job
# tasks, ssh sessions) is killed; munged is stopped only if up.sh started it.
# The keys in $SLURM_RIG_DIR/ssh are kept for the next start. Safe to run when
# nothing is up.
# Exit status: 0 clean, 1 something was left behind (named).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
D=${SLURM_RIG_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/slurm}
[ -d "$D" ] && D=$(cd "$D" && pwd)
OWNER=/run/hpcpack-slurm-rig.dir
[ "$(id -u)" = 0 ] || { echo "down.sh: needs root" >&2; exit 1; }

T0=${EPOCHREALTIME/./}
secs() { local us=$(( ${EPOCHREALTIME/./} - T0 )); printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000)); }
say() { printf '[slurm %6ss] %s\n' "$(secs)" "$*" >&2; }

exec 9>/run/lock/hpcpack-slurm-rig.lock
flock -w 60 9 || { say "error: another up.sh or down.sh holds /run/lock/hpcpack-slurm-rig.lock"; exit 1; }
if [ -s $OWNER ] && [ "$(cat $OWNER)" != "$D" ]; then
  say "error: the rig on this machine was started from $(cat $OWNER), not $D; run SLURM_RIG_DIR=$(cat $OWNER) $0"
  exit 1
fi

# A zombie (exited, its new parent not yet reaping) counts as stopped.
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st#Z}" = "$st" ]; }
# stop PIDFILE: TERM, wait up to 5 s, then KILL.
stop() {
  local f=$D/run/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -9 "$pid" 2>/dev/null && say "killed $1 ($pid) after 5 s"
  fi
  rm -f "$f"
}

if [ -f "$D/run/slurmctld.pid" ] && kill -0 "$(cat "$D/run/slurmctld.pid")" 2>/dev/null; then
  jobs=$(SLURM_CONF=$D/slurm.conf timeout 5 squeue -h -o %A 2>/dev/null)
  [ -z "$jobs" ] || SLURM_CONF=$D/slurm.conf timeout 5 scancel $jobs 2>/dev/null
fi
stop slurmrestd
for f in "$D"/run/sshd.node*.pid; do [ -f "$f" ] && { f=${f##*/}; stop "${f%.pid}"; }; done
for f in "$D"/run/slurmd.node*.pid; do [ -f "$f" ] && { f=${f##*/}; stop "${f%.pid}"; }; done
# Whatever is left in a node (slurmstepd, tasks of cancelled jobs) is the rig's.
for ns in $(ip netns list 2>/dev/null | awk '/^hn[0-9]+( |$)/{print $1}'); do
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [ -z "$pids" ] || { kill -9 $pids 2>/dev/null; sleep 0.2; }
  ip netns del "$ns"
done
stop slurmctld
stop munged
ip link del hpcbr0 2>/dev/null
if [ -f "$D/run/slurmrestd.dir" ]; then rm -rf "$(cat "$D/run/slurmrestd.dir")"; fi
rm -rf "$D/state" "$D/spool" "$D/run" "$D/env" "$D/token"
rm -f $OWNER

left=""
[ -z "$(ip netns list 2>/dev/null | awk '/^hn[0-9]+( |$)/')" ] || left+=" namespaces hn*;"
ip link show hpcbr0 >/dev/null 2>&1 && left+=" bridge hpcbr0;"
(exec 3<>/dev/tcp/127.0.0.1/6820) 2>/dev/null && left+=" a listener on 127.0.0.1:6820;"
if [ -n "$left" ]; then say "error: left behind:$left"; exit 1; fi
say "down in $(secs) s"
