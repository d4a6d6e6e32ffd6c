#!/bin/bash
# The rig's smoke check (`run.sh --check` runs it as the command, in the
# guest): both Soft-RoCE devices are listed, and the C reference
# ibv_rc_pingpong passes between them across the two namespaces: server on
# rxe0 in rxeA, client on rxe1 in rxeB, QP numbers exchanged over TCP to
# 172.16.0.1, with the IPv4-mapped GID index that guest.sh found.
# It runs anywhere the RXE_* variables describe two connected RoCE ports, so a
# site with real hardware can run it too (see README.md).
set -uo pipefail
: "${RXE_NS_A?} ${RXE_NS_B?} ${RXE_DEV_A:?} ${RXE_DEV_B:?} ${RXE_IP_A:?}"
GID_A=${RXE_GID_INDEX_A:-1} GID_B=${RXE_GID_INDEX_B:-1}
PORT=${RXE_CHECK_PORT:-18515}
t0=${EPOCHREALTIME/./}
phase() {
  local us=$((${EPOCHREALTIME/./} - t0))
  printf '[check %3d.%02ds] %s\n' $((us / 1000000)) $((us % 1000000 / 10000)) "$*"
}
fail() { phase "FAIL: $*"; exit 1; }
# in_ns NS CMD...: CMD in network namespace NS, or where we are if NS is empty
# (hardware whose two ports are both in the current namespace).
in_ns() { local ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

phase "ibv_devices"
list=$(ibv_devices) || fail "ibv_devices failed"
echo "$list"
for dev in "$RXE_DEV_A" "$RXE_DEV_B"; do
  grep -qw "$dev" <<<"$list" || fail "ibv_devices does not list $dev"
done

phase "ibv_rc_pingpong server $RXE_DEV_A (gid $GID_A, netns $RXE_NS_A) <- client $RXE_DEV_B (gid $GID_B, netns $RXE_NS_B)"
srv_log=$(mktemp)
in_ns "$RXE_NS_A" timeout 60 ibv_rc_pingpong -d "$RXE_DEV_A" -g "$GID_A" -p "$PORT" >"$srv_log" 2>&1 &
srv=$!
# The client does not retry its TCP connect, so wait for the listener.
for _ in $(seq 100); do
  in_ns "$RXE_NS_A" ss -Hltn "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
in_ns "$RXE_NS_B" timeout 60 ibv_rc_pingpong -d "$RXE_DEV_B" -g "$GID_B" -p "$PORT" "$RXE_IP_A"
crc=$?
wait "$srv"
src=$?
echo "-- server:"
cat "$srv_log"
[ "$crc" = 0 ] || fail "ibv_rc_pingpong client exited $crc"
[ "$src" = 0 ] || fail "ibv_rc_pingpong server exited $src"
phase "ok: rc_pingpong passed"
