#!/bin/bash
# Stop what benches/slurm/start.sh started (pid files under $SLURM_DIR/run), newest first.
# A pid is only signalled if it still names the program start.sh ran (pids get reused).
D=${SLURM_DIR:-/var/tmp/hpcpack-bench-slurm}
for p in slurmrestd:slurmrestd slurmrestd.runuser:runuser slurmd.fg:slurmd slurmctld.fg:slurmctld munged:munged munged.runuser:runuser; do
  name=${p%%:*} comm=${p#*:}
  f=$D/run/$name.pid; [ -f "$f" ] || continue
  pid=$(cat "$f")
  if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] && kill "$pid" 2>/dev/null; then
    echo "stopped $name ($pid)"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
done
exit 0
