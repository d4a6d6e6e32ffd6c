#!/bin/bash
# tests/rxe/verbs-checks.sh: the verbs transport's checks, batched into ONE
# guest boot (each boot costs ~10 s under TCG). Run inside the rig:
#
#   tests/rxe/run.sh tests/rxe/verbs-checks.sh
#
# or directly where RXE_NS_A/RXE_NS_B name two network namespaces whose
# RDMA devices reach each other (a site with real hardware). Prints one
# `ok: <check>` line per check passed, `FAIL: <check>` and the output of a
# failed one, and exits non-zero if any failed. The ranks run in the two
# namespaces (`ip netns exec` keeps PMI_FD open), so a pair goes over
# verbs only if the devices really talk.
set -u
B=${CARGO_TARGET_DIR:-$PWD/target}/debug
: "${RXE_NS_A:?run inside tests/rxe/run.sh}" "${RXE_NS_B:?}"
failed=0
T=$(mktemp -d)

# run NAME TIMEOUT CMD...: output in $T/NAME, exit status returned
run() {
  local name=$1 t=$2; shift 2
  timeout "$t" "$@" >"$T/$name" 2>&1
}
ok() { echo "ok: $1"; }
fail() { echo "FAIL: $1"; sed 's/^/  | /' "$T/$2"; failed=1; }
# two ranks, one per namespace, with the given -genv pairs
pair() {
  local name=$1 t=$2 args=$3; shift 3
  run "$name" "$t" "$B/mpiexec" "$@" \
    -n 1 ip netns exec "$RXE_NS_A" "$B/mpipingpong" $args : \
    -n 1 ip netns exec "$RXE_NS_B" "$B/mpipingpong" $args
}
NOSOCK=(-genv MSMPI_DISABLE_SHM 1 -genv MSMPI_DISABLE_SOCK 1 -genv MSMPI_CONNECTIVITY_TABLE 1)

# 1. Small messages over verbs, and the table says so.
if pair small 120 "-m -p 1:200" "${NOSOCK[@]}" && grep -q '^0:\.@$' "$T/small" \
  && grep -q '^1:@\.$' "$T/small" && grep -q 'Network Direct: *1' "$T/small"; then
  ok "1-byte pingpong over verbs, connectivity table shows @"
  grep -A1 '^Latency' "$T/small" | tail -1
else fail "small messages over verbs" small; fi

# 2. Rendezvous (RDMA WRITE between user buffers).
if pair large 180 "-m -p 4000000:20" "${NOSOCK[@]}" && grep -q '^0:\.@$' "$T/large"; then
  ok "4 MB pingpong over verbs (rendezvous)"
  grep -A1 '^Throughput' "$T/large" | tail -1
else fail "large messages over verbs" large; fi

# 3. Device chosen by MPICH_NETMASK, every pair preconnected.
if pair netmask 120 "-m -p 100000:20" "${NOSOCK[@]}" -genv MPICH_NETMASK 172.16.0.0/255.255.0.0 \
  -genv MSMPI_PRECONNECT all && grep -q '^0:\.@$' "$T/netmask"; then
  ok "MPICH_NETMASK picks the device, MSMPI_PRECONNECT all"
else fail "MPICH_NETMASK" netmask; fi

# 3b. Four ranks, two per namespace: every pair over verbs, including the
# two pairs inside one namespace (one device to itself).
if run four 240 "$B/mpiexec" "${NOSOCK[@]}" \
    -n 2 ip netns exec "$RXE_NS_A" "$B/mpipingpong" -m -p 100000:10 : \
    -n 2 ip netns exec "$RXE_NS_B" "$B/mpipingpong" -m -p 100000:10 \
  && grep -q '^0:\.@@@$' "$T/four" && grep -q '^3:@@@\.$' "$T/four" \
  && grep -q 'Network Direct: *6' "$T/four"; then
  ok "four ranks, all six pairs over verbs"
else fail "four ranks over verbs" four; fi

# 3c. Non-blocking messages (examples/exchange: every rank isends to every
# other before it irecvs, which deadlocks with blocking calls), over verbs
# only: two ranks, one per namespace, then four, two per namespace.
X=$B/examples/exchange
if [ ! -x "$X" ]; then
  echo "  ($X is missing: cargo build --examples)" >"$T/xchg2"
  fail "exchange over verbs (non-blocking)" xchg2
else
  if run xchg2 240 "$B/mpiexec" "${NOSOCK[@]}" \
      -n 1 ip netns exec "$RXE_NS_A" "$X" 1 100000 4000000 : \
      -n 1 ip netns exec "$RXE_NS_B" "$X" 1 100000 4000000 \
    && grep -q '^exchange ok' "$T/xchg2" && grep -q '^0:\.@$' "$T/xchg2"; then
    ok "exchange (isend/irecv/waitall), 2 ranks over verbs"
  else fail "exchange, 2 ranks over verbs" xchg2; fi
  if run xchg4 300 "$B/mpiexec" "${NOSOCK[@]}" \
      -n 2 ip netns exec "$RXE_NS_A" "$X" 1 100000 4000000 : \
      -n 2 ip netns exec "$RXE_NS_B" "$X" 1 100000 4000000 \
    && grep -q '^exchange ok' "$T/xchg4" && grep -q '^0:\.@@@$' "$T/xchg4"; then
    ok "exchange (isend/irecv/waitall), 4 ranks over verbs"
  else fail "exchange, 4 ranks over verbs" xchg4; fi
fi

# 4. A rank killed mid-transfer ends the job (not a hang).
pair kill 90 "-m -p 4000000:1000000" "${NOSOCK[@]}" &
job=$!
victim=""
for _ in $(seq 100); do
  for p in $(pgrep -x mpipingpong); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'PMI_RANK=1'; then victim=$p; fi
  done
  [ -n "$victim" ] && break
  sleep 0.2
done
sleep 3
[ -n "$victim" ] && kill -9 "$victim"
start=$SECONDS
wait $job; rc=$?
if [ -n "$victim" ] && [ $rc -ne 0 ] && [ $rc -ne 124 ]; then
  ok "rank 1 killed mid-transfer: job ended with status $rc after $((SECONDS - start)) s"
  grep -m2 -e 'mpipingpong: rank' -e 'terminated\|killed\|exited' "$T/kill" | sed 's/^/  /'
else echo "  (victim=${victim:-none} rc=$rc)"; fail "rank killed mid-transfer" kill; fi

# 5. libibverbs hidden: TCP fallback saying so; with sockets off, a clear failure.
lib=$(readlink -f "$(ldconfig -p | awk '/libibverbs.so.1 /{print $NF; exit}')")
HIDE=(unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib")
# (MPICH_NETMASK: the TCP transport takes two namespaces of one kernel for
# one host and would try loopback, which does not cross namespaces.)
if run nolib 120 "${HIDE[@]}" "$B/mpiexec" -genv MSMPI_DISABLE_SHM 1 -genv MSMPI_CONNECTIVITY_TABLE 1 \
    -genv MPICH_NETMASK 172.16.0.0/16 \
    -n 1 ip netns exec "$RXE_NS_A" "$B/mpipingpong" -m -p 1:20 : \
    -n 1 ip netns exec "$RXE_NS_B" "$B/mpipingpong" -m -p 1:20 \
  && grep -q '^0:\.S$' "$T/nolib" && grep -q 'libibverbs not found' "$T/nolib"; then
  ok "libibverbs hidden: falls back to sockets and says why"
else fail "libibverbs hidden, fallback" nolib; fi
if ! run nolib2 120 "${HIDE[@]}" "$B/mpiexec" "${NOSOCK[@]}" \
    -n 1 ip netns exec "$RXE_NS_A" "$B/mpipingpong" -m -p 1:20 : \
    -n 1 ip netns exec "$RXE_NS_B" "$B/mpipingpong" -m -p 1:20 \
  && grep -q 'network direct: rank [01]: libibverbs not found' "$T/nolib2"; then
  ok "libibverbs hidden and MSMPI_DISABLE_SOCK=1: fails naming the missing library"
else fail "libibverbs hidden, sockets off" nolib2; fi

# 6. A user whose locked-memory limit is too small to register the buffers
# (root is exempt, so the ranks run as nobody): the failure says which
# limit to raise.
LOW=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
if ! run memlock 120 sh -c 'ulimit -l 64 && exec "$@"' sh "$B/mpiexec" "${NOSOCK[@]}" \
    -n 1 ip netns exec "$RXE_NS_A" "${LOW[@]}" "$B/mpipingpong" -m -p 1:20 : \
    -n 1 ip netns exec "$RXE_NS_B" "${LOW[@]}" "$B/mpipingpong" -m -p 1:20 \
  && grep -q 'network direct: rank [01]: RDMA device rxe[01]:1: registering [0-9]* bytes failed: .*the locked-memory limit (ulimit -l) is 64 KiB: raise it' "$T/memlock"; then
  ok "locked-memory limit too low: fails naming ulimit -l"
else fail "locked-memory limit too low" memlock; fi

rm -rf "$T"
exit $failed
