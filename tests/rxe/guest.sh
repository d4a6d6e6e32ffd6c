#!/bin/bash
# Runs inside the rig's guest, as root, chrooted into the host's root (see
# init): builds the two-namespace Soft-RoCE network, then runs the command
# that run.sh was given.
#
#   rxeA: veth0 172.16.0.1/16, rxe0 on veth0
#   rxeB: veth1 172.16.0.2/16, rxe1 on veth1
#
# The RDMA subsystem stays in its default "shared" netns mode, so rxe0 and
# rxe1 are visible from every namespace (the root one included); each
# device's traffic goes through the netdev it was created on. RoCE GIDs:
# index 0 is the device's default GID (IPv6 link-local from the MAC), and the
# IPv4-mapped RoCE v2 GID (::ffff:172.16.0.x) is index 1. This script looks
# the index up rather than assuming it, and exports it.
#
# $1 = the run directory (shared read-write with the host). In it: env (the
# variables and the command, written by run.sh), and written here: out and
# err (the command's stdout and stderr, tailed by the host), rc (its exit
# code). Lines for the host start with "[rxe] ", reasons to give up with
# "[rxe] FATAL: ".
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN=$1
up() { cut -d' ' -f1 /proc/uptime; }
fatal() { echo "[rxe] FATAL: $*"; exit 1; }

NS_A=rxeA NS_B=rxeB DEV_A=rxe0 DEV_B=rxe1 IP_A=172.16.0.1 IP_B=172.16.0.2

# DAD off (inherited by the namespaces made below, which by default would
# reset IPv6 settings): otherwise link-local addresses, and so GID 0, stay
# "tentative" for a second or two. Each process start costs ~0.1 s under
# TCG, hence the batches.
sysctl -qw net.core.devconf_inherit_init_net=1 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -batch - <<EOF || fatal "cannot create the namespaces and the veth pair"
netns add $NS_A
netns add $NS_B
link add veth0 netns $NS_A type veth peer name veth1 netns $NS_B
EOF
ip -n "$NS_A" -batch - <<EOF || fatal "cannot configure veth0 in $NS_A"
link set lo up
addr add $IP_A/16 dev veth0
link set veth0 up
EOF
ip -n "$NS_B" -batch - <<EOF || fatal "cannot configure veth1 in $NS_B"
link set lo up
addr add $IP_B/16 dev veth1
link set veth1 up
EOF
[ "$(ip netns exec "$NS_A" sysctl -n net.ipv6.conf.veth0.accept_dad)" = 0 ] || fatal "accept_dad not inherited by $NS_A"
echo "[rxe] netns ready after $(up)s"

rdma system show 2>/dev/null | grep -q 'netns shared' \
  || fatal "rdma netns mode is not 'shared': $(rdma system show 2>&1)"
ip netns exec "$NS_A" rdma link add "$DEV_A" type rxe netdev veth0 || fatal "rdma link add $DEV_A (in $NS_A)"
ip netns exec "$NS_B" rdma link add "$DEV_B" type rxe netdev veth1 || fatal "rdma link add $DEV_B (in $NS_B)"

# sysfs spells a GID as eight groups of four hex digits.
v4_gid() { local IFS=.; set -- $1; printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "$@"; }
# Waits (up to ~10 s) until the device's port is ACTIVE and its GID table
# holds the IPv4-mapped RoCE v2 GID of $2; prints that GID's index.
gid_index() {
  local dev=$1 want p i
  want=$(v4_gid "$2")
  p=/sys/class/infiniband/$dev/ports/1
  for _ in $(seq 100); do
    if grep -q ACTIVE "$p/state" 2>/dev/null; then
      for i in $(ls "$p/gids" | sort -n); do
        if [ "$(cat "$p/gids/$i" 2>/dev/null)" = "$want" ] \
          && [ "$(cat "$p/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ]; then
          echo "$i"; return 0
        fi
      done
    fi
    sleep 0.1
  done
  return 1
}
GID_A=$(gid_index "$DEV_A" "$IP_A") || fatal "$DEV_A: port not ACTIVE or no RoCE v2 GID for $IP_A"
GID_B=$(gid_index "$DEV_B" "$IP_B") || fatal "$DEV_B: port not ACTIVE or no RoCE v2 GID for $IP_B"
echo "[rxe] rxe ports active after $(up)s"

# Both devices must be usable from both namespaces and from the root one,
# where the command starts: libibverbs lists a device only when its uverbs
# node exists too.
for ns in "" "$NS_A" "$NS_B"; do
  seen=$(${ns:+ip netns exec "$ns"} ibv_devices 2>&1)
  for dev in "$DEV_A" "$DEV_B"; do
    grep -qw "$dev" <<<"$seen" || fatal "ibv_devices in netns ${ns:-root} does not list $dev: $(echo $seen)"
  done
done
echo "[rxe] rxe ready after $(up)s (GID index $DEV_A=$GID_A $DEV_B=$GID_B)"

export RXE_NS_A=$NS_A RXE_NS_B=$NS_B RXE_DEV_A=$DEV_A RXE_DEV_B=$DEV_B RXE_IP_A=$IP_A RXE_IP_B=$IP_B
export RXE_GID_INDEX_A=$GID_A RXE_GID_INDEX_B=$GID_B
# shellcheck source=/dev/null
. "$RUN/env"   # PATH, HOME, CARGO_TARGET_DIR, extra variables; RXE_REPO; RXE_CMD
cd "$RXE_REPO" || fatal "cd $RXE_REPO"
"${RXE_CMD[@]}" >>"$RUN/out" 2>>"$RUN/err"
echo $? >"$RUN/rc"
echo "[rxe] command done after $(up)s"
