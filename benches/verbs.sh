#!/bin/bash
# benches/verbs.sh: mpipingpong over the verbs transport against perftest
# (ib_send_lat, ib_write_bw) on the same two RDMA devices, in the same run;
# prints the ratios (issue 4's goal: within 10% of each).
#
#   benches/verbs.sh                 boots the Soft-RoCE rig (tests/rxe/run.sh)
#   RXE_NS_A=.. RXE_NS_B=.. RXE_DEV_A=.. RXE_DEV_B=.. RXE_IP_A=.. \
#   RXE_GID_INDEX_A=.. RXE_GID_INDEX_B=.. benches/verbs.sh
#                                    runs directly (inside the rig, or on two
#                                    namespaces / devices of a real machine)
#
# Soft-RoCE under TCG is emulated: only the ratios mean something. On real
# hardware, set the variables above for two ports of one machine, each in
# its own namespace (benches/README.md, "On real hardware").
# Sizes: LAT_SIZE (1), LAT_ITERS (1000), BW_SIZE (4000000), BW_ITERS (50);
# ROUNDS (3) alternating rounds.
set -u
if [ -z "${RXE_NS_A:-}" ]; then
  cd "$(dirname "$0")/.." && cargo build -q --release --bin mpiexec --bin mpipingpong \
    && RXE_ENV="${RXE_ENV:-} ROUNDS LAT_SIZE LAT_ITERS BW_SIZE BW_ITERS PROFILE" \
      exec tests/rxe/run.sh benches/verbs.sh
fi
# Release binaries (the ones a site runs); PROFILE=debug for a dev build.
B=${CARGO_TARGET_DIR:-$PWD/target}/${PROFILE:-release}
LAT_SIZE=${LAT_SIZE:-1} LAT_ITERS=${LAT_ITERS:-1000}
BW_SIZE=${BW_SIZE:-4000000} BW_ITERS=${BW_ITERS:-50}
A=(ip netns exec "$RXE_NS_A") Bn=(ip netns exec "$RXE_NS_B")
GA=${RXE_GID_INDEX_A:-1} GB=${RXE_GID_INDEX_B:-1}

# perftest: server in A, client in B; prints the client's result row.
perf() {
  local tool=$1; shift
  "${A[@]}" "$tool" -d "$RXE_DEV_A" -x "$GA" -F "$@" >/dev/null 2>&1 &
  local srv=$!
  sleep 1
  "${Bn[@]}" "$tool" -d "$RXE_DEV_B" -x "$GB" -F "$@" "$RXE_IP_A" 2>&1 | awk '$1 ~ /^[0-9]+$/ && NF >= 4 {row=$0} END {print row}'
  wait $srv
}
mpp() {
  timeout 600 "$B/mpiexec" -genv MSMPI_DISABLE_SHM 1 -genv MSMPI_DISABLE_SOCK 1 \
    -n 1 "${A[@]}" "$B/mpipingpong" -m -p "$1" : -n 1 "${Bn[@]}" "$B/mpipingpong" -m -p "$1" \
    | awk '/\[0\] <-> / {print $NF}'
}

# A *_bw result row: #bytes #iters BW_peak BW_average[MB/s, MB = 2^20] ...;
# the average in 10^6 B/s, mpipingpong's unit.
avg_bw() { awk '{printf "%.2f", $4 * 1.048576}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "?"}'; }
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | grep -v '?' | sort -g \
  | awk '{v[NR] = $1} END {if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# ROUNDS alternating rounds, best of each (a shared CI machine is noisy;
# the emulated devices make single runs vary by 2x or more).
ROUNDS=${ROUNDS:-3}
best() { awk -v a="$1" -v b="$2" -v dir="$3" 'BEGIN {
  if (a == "") { print b; exit } if (b == "") { print a; exit }
  if ((dir == "min" && b + 0 < a + 0) || (dir == "max" && b + 0 > a + 0)) print b; else print a }'; }
perf_lat="" perf_bw="" perf_rd="" perf_wl="" mpp_lat="" mpp_bw=""
# Per-round ratios too: a round's two sides run minutes apart at most, so
# their ratio is less at the mercy of the load than two best-ofs.
r_lat="" r_bw="" r_wl=""
for r in $(seq "$ROUNDS"); do
  # Each of ours right after the perftest run it is compared with.
  lat_row=$(perf ib_send_lat -s "$LAT_SIZE" -n "$LAT_ITERS")
  l=$(mpp "$LAT_SIZE:$LAT_ITERS")
  rd_row=$(perf ib_read_bw -s "$BW_SIZE" -n "$BW_ITERS")
  # ib_write_lat: a pingpong of RDMA writes, what mpipingpong does.
  wl_row=$(perf ib_write_lat -s "$BW_SIZE" -n 20)
  bw_row=$(perf ib_write_bw -s "$BW_SIZE" -n "$BW_ITERS")
  b=$(mpp "$BW_SIZE:$BW_ITERS")
  echo "round $r: ib_send_lat: $(echo $lat_row)"
  echo "round $r: ib_write_bw: $(echo $bw_row)"
  echo "round $r: ib_read_bw:  $(echo $rd_row)"
  echo "round $r: ib_write_lat: $(echo $wl_row)"
  echo "round $r: mpipingpong: $l us, $b MB/s"
  # ib_send_lat: #bytes #iters t_min t_max t_typical t_avg ...; one-way µs.
  pl=$(awk '{print $6}' <<<"$lat_row")
  pb=$(avg_bw "$bw_row")
  pw=$(awk '{if ($6 > 0) printf "%.2f", $1 / $6}' <<<"$wl_row")
  perf_lat=$(best "$perf_lat" "$pl" min)
  perf_bw=$(best "$perf_bw" "$pb" max)
  perf_rd=$(best "$perf_rd" "$(avg_bw "$rd_row")" max)
  perf_wl=$(best "$perf_wl" "$pw" max)
  mpp_lat=$(best "$mpp_lat" "$l" min); mpp_bw=$(best "$mpp_bw" "$b" max)
  r_lat+=" $(ratio "$l" "$pl")" r_bw+=" $(ratio "$b" "$pb")" r_wl+=" $(ratio "$b" "$pw")"
done
printf '%-48s %12s %12s %8s\n' "best of $ROUNDS rounds" mpipingpong perftest ratio
printf '%-48s %12s %12s %8s\n' "latency, $LAT_SIZE B, half round trip (us, avg)" "$mpp_lat" "$perf_lat" "$(ratio "$mpp_lat" "$perf_lat")"
printf '%-48s %12s %12s %8s\n' "bandwidth, $BW_SIZE B (10^6 B/s) vs ib_write_bw" "$mpp_bw" "$perf_bw" "$(ratio "$mpp_bw" "$perf_bw")"
printf '%-48s %12s %12s %8s\n' "  vs ib_read_bw" "" "$perf_rd" "$(ratio "$mpp_bw" "$perf_rd")"
printf '%-48s %12s %12s %8s\n' "  vs ib_write_lat's pingpong (size / t_avg)" "" "$perf_wl" "$(ratio "$mpp_bw" "$perf_wl")"
echo
echo "per round (mpipingpong / perftest, same round):"
printf '%-48s %s  median %s\n' "  latency vs ib_send_lat (lower is better)" "$r_lat" "$(median "$r_lat")"
printf '%-48s %s  median %s\n' "  bandwidth vs ib_write_bw (higher is better)" "$r_bw" "$(median "$r_bw")"
printf '%-48s %s  median %s\n' "  bandwidth vs ib_write_lat's pingpong" "$r_wl" "$(median "$r_wl")"
