#!/bin/bash
# tests/slurm/up.sh: a Slurm cluster of N hosts on one Linux machine (Debian 12's
# Slurm 22.05), the multi-host rig of tests/slurm.rs. See README.md beside it.
#
# Each compute node (node1..nodeN) is a network namespace hnI (eth0 on bridge
# hpcbr0, 10.88.0.1I), a UTS namespace (its host name) and a mount namespace
# whose only change is a private /etc/hosts naming every node: the nodes see
# the machine's whole filesystem, as a Slurm site's shared filesystem. slurmctld
# runs as host "head" (10.88.0.1, the bridge), slurmrestd on 127.0.0.1:6820
# with JWT auth (openapi/v0.0.38). Partition and feature: azurenodes. Each node
# also runs an sshd on its address, port 22, root by the rig's key only; clients
# use $SLURM_RIG_DIR/ssh/config (ssh -F), which maps node1..N to their addresses.
#
# Idempotent: a rig already up from the same directory is left as it is (only
# the sshd of a node that has none is started); a half-started one is stopped
# first. One rig per machine (the bridge, the namespaces and the ports are
# global); another directory's rig is refused.
#
# Exit status: 0 up (prints the env file to source), 2 = not root or packages
# missing (names the apt-get line), 125 = a daemon did not come up (names its log).
#
# Environment:
#   SLURM_RIG_DIR    state directory (default: $CARGO_TARGET_DIR or target/, + /slurm)
#   SLURM_RIG_NODES  number of compute nodes (default 3, at most 9)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${SLURM_RIG_NODES:-3}
D=${SLURM_RIG_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/slurm}
PKGS="slurmctld slurmd slurm-client munge slurmrestd slurm-wlm-jwt-plugin iproute2 util-linux openssh-server"
OWNER=/run/hpcpack-slurm-rig.dir

T0=${EPOCHREALTIME/./}
secs() { local us=$(( ${EPOCHREALTIME/./} - T0 )); printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000)); }
say() { printf '[slurm %6ss] %s\n' "$(secs)" "$*" >&2; }
die() { local rc=$1; shift; say "error: $*"; exit "$rc"; }

[ "$(id -u)" = 0 ] || die 2 "the Slurm rig needs root (network namespaces, a bridge, slurmd as root); run tests/slurm.rs as root"
missing=()
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} = 0 ] || die 2 "packages missing: ${missing[*]}; run: apt-get install -y --no-install-recommends $PKGS (or .ci/run as root)"
case $N in [1-9]) ;; *) die 2 "SLURM_RIG_NODES=$N: 1 to 9 nodes (addresses 10.88.0.11..19)";; esac

mkdir -p "$D"
D=$(cd "$D" && pwd)
# fd 9 holds the lock; the daemons must not inherit it (9>&- below).
exec 9>/run/lock/hpcpack-slurm-rig.lock
flock -w 60 9 || die 125 "another up.sh or down.sh holds /run/lock/hpcpack-slurm-rig.lock"

alive() { [ -f "$D/run/$1.pid" ] && kill -0 "$(cat "$D/run/$1.pid")" 2>/dev/null; }

# sshd per node, in the node's network namespace with its host name and hosts
# file (as slurmd), listening on the node's address only. Everything is in
# $D/ssh: one host key per node, root's key pair, the authorized keys, the
# client's config and known hosts; the machine's sshd_config, host keys and
# ~/.ssh are neither used nor changed. Starts only the sshds not running.
sshd_up() {
  local S=$D/ssh i addr
  mkdir -p "$S"; chmod 700 "$S"
  [ -s "$S/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "root@hpcpack-rig" -f "$S/id_ed25519"
  install -m 600 "$S/id_ed25519.pub" "$S/authorized_keys"
  : > "$S/known_hosts.new"
  {
    for i in $(seq "$N"); do printf 'Host node%s\n  HostName 10.88.0.%s\n' "$i" $((10+i)); done
    cat <<C
Host *
  User root
  IdentityFile $S/id_ed25519
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $S/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  PasswordAuthentication no
  ConnectTimeout 5
  LogLevel ERROR
C
  } > "$S/config.new"
  for i in $(seq "$N"); do
    addr=10.88.0.$((10+i))
    [ -s "$S/host_node$i" ] || ssh-keygen -q -t ed25519 -N '' -C "node$i" -f "$S/host_node$i"
    echo "node$i,$addr $(cut -d' ' -f1,2 "$S/host_node$i.pub")" >> "$S/known_hosts.new"
    # StrictModes no: the rig's directory may lie under a world-writable one
    # (/tmp), which StrictModes refuses; its ssh/ is root's, mode 0700.
    cat > "$S/sshd_config.node$i" <<C
ListenAddress $addr:22
HostKey $S/host_node$i
PidFile none
AuthorizedKeysFile $S/authorized_keys
AuthenticationMethods publickey
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
PermitTunnel no
PrintMotd no
C
  done
  # Replaced whole, so a client of a rig already up never reads half a file.
  mv "$S/config.new" "$S/config"; mv "$S/known_hosts.new" "$S/known_hosts"
  chmod 600 "$S"/id_ed25519 "$S"/host_node? "$S/authorized_keys"
  chmod 644 "$S/config" "$S/known_hosts" "$S"/*.pub
  # The privilege-separation directory sshd insists on (shared by the nodes).
  mkdir -p /run/sshd; chmod 755 /run/sshd
  for i in $(seq "$N"); do
    alive "sshd.node$i" && continue
    nsenter --net=/var/run/netns/hn$i unshare --uts --mount sh -c \
      "mount --bind $D/hosts /etc/hosts; mount --bind $D/etc/node$i /etc/hpcpack; hostname node$i; exec /usr/sbin/sshd -D -e -f $S/sshd_config.node$i" \
      > "$D/log/sshd.node$i.log" 2>&1 9>&- &
    echo $! > "$D/run/sshd.node$i.pid"
  done
  for i in $(seq "$N"); do
    addr=10.88.0.$((10+i))
    for _ in $(seq 50); do (exec 3<>/dev/tcp/$addr/22) 2>/dev/null && break; alive "sshd.node$i" || break; sleep 0.1; done
    { alive "sshd.node$i" && (exec 3<>/dev/tcp/$addr/22) 2>/dev/null; } ||
      die 125 "sshd of node$i did not come up on $addr:22 within 5 s; see $D/log/sshd.node$i.log"
  done
  say "sshd up on $N nodes (ssh -F $S/config node1)"
}
if [ -s $OWNER ] && [ "$(cat $OWNER)" != "$D" ]; then
  other=$(cat $OWNER)
  if [ -f "$other/run/slurmctld.pid" ] && kill -0 "$(cat "$other/run/slurmctld.pid")" 2>/dev/null; then
    die 125 "a Slurm rig from $other is running; stop it first: SLURM_RIG_DIR=$other $REPO/tests/slurm/down.sh"
  fi
fi
export SLURM_CONF=$D/slurm.conf
# Up means every node idle or running jobs (a rig in use is up, not
# half-started: another checkout's tests may hold it).
if alive slurmctld && alive slurmrestd && [ -z "$(sinfo -h -o %t 2>/dev/null | grep -vxE 'idle|mix|alloc|comp')" ] \
   && [ "$(sinfo -h -N -o %N 2>/dev/null | sort -u | wc -l)" = "$N" ]; then
  all=1; for i in $(seq "$N"); do alive "slurmd.node$i" || all=0; done
  if [ $all = 1 ]; then sshd_up; say "already up ($D)"; echo "$D/env"; exit 0; fi
fi
if [ -d "$D/run" ] && ls "$D"/run/*.pid >/dev/null 2>&1; then
  say "stopping a half-started rig first"
  flock -u 9
  SLURM_RIG_DIR=$D "$REPO/tests/slurm/down.sh" >&2
  flock -w 60 9 || die 125 "cannot take /run/lock/hpcpack-slurm-rig.lock again"
fi
rm -rf "$D/state" "$D/spool" "$D/log" "$D/run"
mkdir -p "$D/state" "$D/spool" "$D/log" "$D/run"
echo "$D" > $OWNER

# Each node's own /etc/hpcpack (where hpcfwutil keeps its registry), as
# each host of a cluster has: an empty directory of the rig's bound over
# the machine's (made if missing, as the mount point).
mkdir -p /etc/hpcpack
for i in $(seq "$N"); do mkdir -p "$D/etc/node$i"; chmod 755 "$D/etc" "$D/etc/node$i"; done

# Network: the bridge is the head's interface; one veth pair per node.
ip link add hpcbr0 type bridge 2>/dev/null || true
ip addr replace 10.88.0.1/24 dev hpcbr0
ip link set hpcbr0 up
{ echo "127.0.0.1 localhost"; echo "10.88.0.1 head $(hostname)"; for i in $(seq "$N"); do echo "10.88.0.$((10+i)) node$i"; done; } > "$D/hosts"
for i in $(seq "$N"); do
  ip netns add hn$i 2>/dev/null || true
  ip link show hv$i >/dev/null 2>&1 || ip link add hv$i type veth peer name eth0 netns hn$i
  ip link set hv$i master hpcbr0 up
  ip -n hn$i addr replace 10.88.0.$((10+i))/24 dev eth0
  ip -n hn$i link set eth0 up; ip -n hn$i link set lo up
done

[ -s "$D/jwt_hs256.key" ] || { (umask 077; dd if=/dev/urandom bs=32 count=1 of="$D/jwt_hs256.key" 2>/dev/null); }
cat > "$D/slurm.conf" <<C
ClusterName=hpcpack
SlurmctldHost=head(10.88.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthAltTypes=auth/jwt
# A requeued job starts again once its credentials expired: 10 s, not 120.
AuthInfo=cred_expire=10
AuthAltParameters=jwt_key=$D/jwt_hs256.key
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/state/slurmctld.pid
SlurmdPidFile=$D/spool/%n/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
NodeName=node[1-$N] NodeAddr=10.88.0.[11-$((10+N))] CPUs=2 RealMemory=4000 Feature=azurenodes State=UNKNOWN
PartitionName=azurenodes Nodes=ALL Default=YES MaxTime=INFINITE State=UP
C
chmod 755 "$D"; chmod 644 "$D/slurm.conf" "$D/hosts"

# munge: use the machine's munged if one answers; else start one and own it.
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged already running: using it (down.sh leaves it)"
else
  [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  mkdir -p /run/munge; chown munge:munge /run/munge; chmod 755 /run/munge
  setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged --foreground --force > "$D/log/munged.log" 2>&1 9>&- &
  echo $! > "$D/run/munged.pid"
  for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 || die 125 "munged did not answer within 5 s; see $D/log/munged.log"
fi

# slurmctld as host "head"; slurmd per node (nsenter --net, not `ip netns exec`,
# which remounts /sys and hides the cgroup mounts slurmd reads).
unshare --uts --mount sh -c "mount --bind $D/hosts /etc/hosts; hostname head; exec /usr/sbin/slurmctld -D -f $SLURM_CONF" > "$D/log/slurmctld.out" 2>&1 9>&- &
echo $! > "$D/run/slurmctld.pid"
for i in $(seq "$N"); do
  mkdir -p "$D/spool/node$i"
  nsenter --net=/var/run/netns/hn$i unshare --uts --mount sh -c \
    "mount --bind $D/hosts /etc/hosts; mount --bind $D/etc/node$i /etc/hpcpack; hostname node$i; exec /usr/sbin/slurmd -D -f $SLURM_CONF" > "$D/log/slurmd.node$i.out" 2>&1 9>&- &
  echo $! > "$D/run/slurmd.node$i.pid"
done
# Bounded wait (30 s) for every node idle, failing early when a daemon dies.
for _ in $(seq 150); do
  [ "$(sinfo -h -o %t 2>/dev/null | sort -u)" = idle ] && break
  alive slurmctld || die 125 "slurmctld exited; see $D/log/slurmctld.log and $D/log/slurmctld.out"
  for i in $(seq "$N"); do alive "slurmd.node$i" || die 125 "slurmd of node$i exited; see $D/log/slurmd.node$i.log and $D/log/slurmd.node$i.out"; done
  sleep 0.2
done
[ "$(sinfo -h -o %t 2>/dev/null | sort -u)" = idle ] || {
  sinfo -N >&2 || true
  die 125 "nodes not idle after 30 s; see $D/log/slurmctld.log and $D/log/slurmd.node*.log"
}
say "slurmctld and $N slurmd up"

# slurmrestd refuses to run as root; openapi/v0.0.38 is the newest plugin 22.05
# ships without slurmdbd. It only forwards the token: slurmctld checks it.
# It runs as nobody, who may not be able to enter $D (a checkout under a
# mktemp -d directory): it reads a copy of slurm.conf in a directory of its
# own that every user may enter (removed by down.sh).
REST_DIR=$(mktemp -d /tmp/hpcpack-slurmrestd.XXXXXX)
chmod 755 "$REST_DIR"
install -m 644 "$SLURM_CONF" "$REST_DIR/slurm.conf"
echo "$REST_DIR" > "$D/run/slurmrestd.dir"
setpriv --reuid=nobody --regid=nogroup --clear-groups env SLURM_CONF="$REST_DIR/slurm.conf" SLURM_JWT=daemon \
  slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 127.0.0.1:6820 > "$D/log/slurmrestd.log" 2>&1 9>&- &
echo $! > "$D/run/slurmrestd.pid"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6820) 2>/dev/null && break; alive slurmrestd || break; sleep 0.1; done
sleep 0.1
{ alive slurmrestd && (exec 3<>/dev/tcp/127.0.0.1/6820) 2>/dev/null; } ||
  die 125 "slurmrestd did not come up on 127.0.0.1:6820 within 5 s (is the port taken?); see $D/log/slurmrestd.log"

sshd_up

token=$(scontrol token username=root lifespan=86400) || die 125 "scontrol token failed; see $D/log/slurmctld.log"
# The token goes to a file of its own, not into env: with SLURM_JWT set, srun
# authenticates to slurmd with JWT, which slurmd does not accept (auth/jwt is
# for slurmctld and slurmrestd), and every step fails to launch.
echo "$token" > "$D/token"; chmod 600 "$D/token"
{ echo "export SLURM_CONF=$SLURM_CONF"; echo "export HPCPACK_SLURM_URL=http://127.0.0.1:6820"; } > "$D/env"
say "up in $(secs) s: source $D/env"
echo "$D/env"
