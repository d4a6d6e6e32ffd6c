#!/bin/bash
# Start a one-machine Slurm cluster (Debian 12's slurm-wlm 22.05) for benches/scheduler.rs:
# munged, slurmctld, slurmd (node "localhost", CPUs = nproc) and slurmrestd on 127.0.0.1:6820
# with JWT auth (openapi/v0.0.38, the newest plugin 22.05 ships).
#
#   benches/slurm/start.sh [--install]      (root only; stop with benches/slurm/stop.sh)
#
# --install (or HPCPACK_BENCH_INSTALL=1) installs the Debian packages when they are missing;
# without it a missing package makes the script print the apt-get line and exit 3.
# Everything lives under $SLURM_DIR (default /var/tmp/hpcpack-bench-slurm), which is wiped of
# old job state on each start. Clients need: export SLURM_CONF=$SLURM_DIR/slurm.conf
# The JWT for slurmrestd ends up in $SLURM_DIR/token.env (SLURM_JWT=...).
set -euo pipefail
D=${SLURM_DIR:-/var/tmp/hpcpack-bench-slurm}
here=$(cd "$(dirname "$0")" && pwd)
PKGS="slurmctld slurmd slurm-client munge slurmrestd slurm-wlm-jwt-plugin"
install=${HPCPACK_BENCH_INSTALL:-0}
for a in "$@"; do
  case $a in
    --install) install=1 ;;
    *) echo "start.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

die() { echo "start.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (slurmd and munged need it)"

missing() {
  local b
  for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/sbin/slurmrestd /usr/bin/sbatch; do
    [ -e "$b" ] || { echo "$b"; return 0; }
  done
  compgen -G '/usr/lib/*/slurm-wlm/auth_jwt.so' >/dev/null || { echo "slurm-wlm/auth_jwt.so"; return 0; }
  return 1
}
if m=$(missing); then
  if [ "$install" = 1 ]; then
    echo "start.sh: installing $PKGS" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS >&2 \
      || die "apt-get install failed"
  else
    echo "start.sh: Slurm is not installed ($m missing). Install it with:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends $PKGS" >&2
    echo "or rerun with --install (HPCPACK_BENCH_INSTALL=1)." >&2
    exit 3
  fi
fi

# A previous run in the same directory must not linger.
SLURM_DIR=$D "$here/stop.sh" >/dev/null 2>&1 || true
for port in 6817 6818 6820; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then die "port $port is busy (another Slurm?)"; fi
done

rm -rf "$D/state" "$D/spool" "$D/log"
mkdir -p "$D/state" "$D/spool" "$D/log" "$D/run" /run/munge
cpus=$(nproc)
mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
sed -e "s#@DIR@#$D#g" -e "s#@CPUS@#$cpus#g" -e "s#@MEM@#$mem#g" "$here/slurm.conf.in" > "$D/slurm.conf"
export SLURM_CONF=$D/slurm.conf
[ -s "$D/jwt_hs256.key" ] || { dd if=/dev/urandom bs=32 count=1 of="$D/jwt_hs256.key" 2>/dev/null; chmod 600 "$D/jwt_hs256.key"; }

# munged (runs as user munge; the package creates the key, create one if it did not)
chown munge:munge /run/munge; chmod 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then
  echo "start.sh: reusing the munged already running" >&2
else
  runuser -u munge -- /usr/sbin/munged --foreground --num-threads=4 > "$D/log/munged.out" 2>&1 &
  mu=$!
  echo $mu > "$D/run/munged.runuser.pid"
  for i in $(seq 50); do pgrep -P $mu > "$D/run/munged.pid" && break; sleep 0.1; done
  for i in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  [ -S /run/munge/munge.socket.2 ] || die "munged did not start, see $D/log/munged.out"
fi

/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$D/log/slurmctld.out" 2>&1 &
echo $! > "$D/run/slurmctld.fg.pid"
# the node is called localhost in slurm.conf whatever the host name is
/usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF" > "$D/log/slurmd.out" 2>&1 &
echo $! > "$D/run/slurmd.fg.pid"
ok=
for i in $(seq 150); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || die "the node did not come up idle: $(sinfo -h -o '%t %E' 2>&1); see $D/log/"

# slurmrestd refuses to run as root. -s openapi/v0.0.38: the newest API in 22.05, and the
# dbv0.0.38 plugin would need slurmdbd.
chmod 755 "$D"; chmod 644 "$D/slurm.conf"
runuser -u nobody -- env SLURM_CONF="$SLURM_CONF" SLURM_JWT=daemon \
  /usr/sbin/slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 127.0.0.1:6820 > "$D/log/slurmrestd.out" 2>&1 &
ru=$!
echo $ru > "$D/run/slurmrestd.runuser.pid"
for i in $(seq 50); do pgrep -P $ru > "$D/run/slurmrestd.pid" && break; sleep 0.1; done
ok=
for i in $(seq 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/6820) 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || die "slurmrestd is not listening on 127.0.0.1:6820, see $D/log/slurmrestd.out"
scontrol token username=root lifespan=7200 > "$D/token.env"   # SLURM_JWT=...
sinfo
