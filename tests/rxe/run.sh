#!/bin/bash
# tests/rxe/run.sh: run a command on real RDMA verbs devices (Soft-RoCE) on a
# machine whose own kernel has no RDMA support. See README.md.
#
#   tests/rxe/run.sh CMD [ARGS...]   (as root) run CMD in the guest
#   tests/rxe/run.sh --check         the built-in smoke check (check.sh)
#
# How: qemu boots Debian's stock kernel (it ships rdma_rxe) with a tiny
# busybox initramfs (init) that mounts the HOST's own root over virtio-9p
# under a tmpfs overlay and chroots into it, so binaries built on the host run
# unchanged. guest.sh then builds two network namespaces joined by a veth
# pair, puts one rxe device on each end, and runs CMD with the working
# directory = the repository root. The guest has no network towards the host.
#
# Exit status: CMD's, or 2 = host prerequisites missing, 124 = RXE_TIMEOUT_S
# expired, 125 = the guest did not boot or the rig could not be set up.
#
# Environment:
#   RXE_TIMEOUT_S=600  hard limit for the guest (boot + CMD), seconds
#   RXE_BOOT_TRIES=3   boots tried when the guest dies before its root is up
#   RXE_INSTALL=1      apt-get install missing host packages (else: fail, naming them)
#   RXE_ACCEL=auto     kvm | tcg | auto (probe KVM once per host/qemu/kernel, else TCG)
#   RXE_KVM_PROBE_S=20 how long the probe waits for the guest kernel to speak
#   RXE_MEM_MB=2048    guest memory
#   RXE_ENV="A B"      more host variables to pass into the guest (PATH, HOME
#                      and CARGO_TARGET_DIR always are, if set)
#   RXE_CACHE          cache dir (default: $CARGO_TARGET_DIR or target/, + /rxe)
#   RXE_KERNEL_PKG     guest kernel package (default: what linux-image-amd64 depends on)
#   RXE_KEEP=1         keep the run directory (console log, outputs) after success
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RIG=$REPO/tests/rxe
# Host packages the rig itself uses. (qemu-system-x86 also brings
# libibverbs1; ibverbs-providers has librxe, the rxe userspace driver.)
PKGS="qemu-system-x86 busybox-static kmod ibverbs-utils ibverbs-providers iproute2"
# Kernel modules for the initramfs; dependencies come from modules.dep.
# ib_uverbs (/dev/infiniband/uverbsN, what libibverbs opens) is a dependency
# of rdma_rxe in 6.1 but not in newer kernels. Modules built into a kernel
# are skipped. The crc32 ones matter on 6.1:
# rdma_rxe computes its ICRC with the "crc32" shash, and with no modprobe in
# the guest nothing loads it on demand: rxe then logs "failed to init crc32
# algorithm err:-2" and `rdma link add` fails with ENOENT.
MODS="virtio_pci 9pnet_virtio 9p overlay veth rdma_rxe ib_uverbs"
# Older kernels' rxe wants the shash, which is crc32_generic (6.1) or
# crc32-cryptoapi (6.15+, where rxe no longer needs it); crc32-pclmul only
# loads where the virtual CPU has PCLMULQDQ.
MODS_OPTIONAL="crc32_generic crc32-cryptoapi crc32-pclmul"
APT=(apt-get -o DPkg::Lock::Timeout=900 -y -q)

T0=${EPOCHREALTIME/./}
# Seconds since start, and since $1 (both in microseconds), as "12.34".
secs() { local us=$(( ${EPOCHREALTIME/./} - ${1:-$T0} )); printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000)); }
say() { printf '[rxe %7ss] %s\n' "$(secs)" "$*" >&2; }
die() { local rc=$1; shift; say "error: $*"; exit "$rc"; }

[ $# -gt 0 ] || die 2 "usage: tests/rxe/run.sh CMD [ARGS...] | --check"
if [ "$1" = --check ]; then
  [ $# = 1 ] || die 2 "--check takes no arguments"
  set -- "$RIG/check.sh"
fi
[ "$(id -u)" = 0 ] || die 2 "must run as root (qemu needs nothing special, but the host root is shared as-is and the guest runs CMD as root)"
TIMEOUT_S=${RXE_TIMEOUT_S:-600}
CACHE=${RXE_CACHE:-${CARGO_TARGET_DIR:-$REPO/target}/rxe}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
case "$CACHE$REPO" in *[[:space:]]*) die 2 "paths with white space are not supported: $CACHE, $REPO";; esac

# ----------------------------------------------------------------- packages --
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "${RXE_INSTALL:-0}" = 1 ] || die 2 "missing host packages: ${missing[*]}
  install them with: apt-get install --no-install-recommends ${missing[*]}
  or run .ci/run, or set RXE_INSTALL=1 (e.g. RXE_INSTALL=1 tests/rxe/run.sh --check)"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${APT[@]}" install --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1 \
    || { "${APT[@]}" update >>"$CACHE/apt.log" 2>&1 \
         && "${APT[@]}" install --no-install-recommends "${missing[@]}" >>"$CACHE/apt.log" 2>&1; } \
    || die 2 "apt-get install ${missing[*]} failed; see $CACHE/apt.log"
  say "installed"
fi

# All cache updates happen under one lock: other runs (other engineers, a
# parallel cargo test) may share the cache directory.
exec 9>"$CACHE/.lock"
flock 9

# ------------------------------------------------------------- guest kernel --
# Which kernel: Soft-RoCE works inside network namespaces only in recent
# kernels (rxe_ns.c, "RDMA/rxe: net namespace support"). Older ones, Debian
# 12's 6.1 among them, open rxe's UDP port 4791 socket and look routes up in
# the root namespace only, so an RC QP between rxe0 in rxeA and rxe1 in rxeB
# fails at once with "local QP operation error". So the guest boots the kernel of
# trixie-backports, the newest that Debian builds for a stable release, read
# through a private apt configuration under the cache: the host's apt sources
# and state are neither read nor changed. RXE_KERNEL_SUITE=host takes the
# host's own linux-image-amd64 instead (6.1 on Debian 12: no cross-namespace
# traffic, as said).
# The first kernel resolved is cached and used from then on, with no network;
# RXE_KERNEL_REFRESH=1 resolves again (backports drops old versions, so a
# fresh clone always gets the current one).
SUITE=${RXE_KERNEL_SUITE:-trixie-backports}
if [ "$SUITE" = host ]; then
  APTK=(apt-get -q)
  APTC=(apt-cache)
else
  adir=$CACHE/apt
  mkdir -p "$adir/sources" "$adir/lists/partial" "$adir/archives/partial"
  printf '%s\n' "Types: deb" "URIs: ${RXE_KERNEL_MIRROR:-http://deb.debian.org/debian}" "Suites: $SUITE" \
    "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$adir/sources/kernel.sources"
  aopt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$adir/sources"
    -o "Dir::State::Lists=$adir/lists" -o "Dir::Cache=$adir" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
    -o Dir::State::status=/dev/null -o Acquire::Languages=none -o APT::Architecture=amd64)
  APTK=(apt-get -q "${aopt[@]}")
  APTC=(apt-cache "${aopt[@]}")
fi
# The versioned image package that the metapackage points to.
kpkg() { { "${APTC[@]}" depends linux-image-amd64 2>/dev/null || true; } | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
KPKG=${RXE_KERNEL_PKG:-}
if [ -z "$KPKG" ] && [ "${RXE_KERNEL_REFRESH:-0}" != 1 ] && [ -f "$CACHE/kernel-$SUITE" ]; then
  KPKG=$(cat "$CACHE/kernel-$SUITE")
  [ -f "$CACHE/$KPKG/.done" ] || KPKG=
fi
if [ -z "$KPKG" ]; then
  KPKG=$(kpkg)
  if [ -z "$KPKG" ] || [ "${RXE_KERNEL_REFRESH:-0}" = 1 ]; then
    if [ "$SUITE" != host ] || [ "${RXE_INSTALL:-0}" = 1 ]; then
      "${APTK[@]}" update >"$CACHE/apt-update.log" 2>&1 || die 2 "apt-get update for the guest kernel ($SUITE) failed; see $CACHE/apt-update.log"
    fi
    KPKG=$(kpkg)
  fi
fi
[ -n "$KPKG" ] || die 2 "cannot resolve the guest kernel from linux-image-amd64 ($SUITE): run apt-get update, or set RXE_KERNEL_PKG"
KVER=${KPKG#linux-image-}
KDIR=$CACHE/$KPKG
if [ ! -f "$KDIR/.done" ]; then
  t=${EPOCHREALTIME/./}
  # Newer Debian kernels split the image into linux-binary-, linux-modules-
  # and linux-base-<version> (vmlinuz, modules, modules.builtin); take every
  # linux-*-<version> dependency along with the image package itself.
  pkgs=("$KPKG" $("${APTC[@]}" depends "$KPKG" 2>/dev/null | awk -v v="-$KVER" '/Depends: linux-/ && substr($2, length($2) - length(v) + 1) == v {print $2}'))
  say "fetching guest kernel: ${pkgs[*]} ($SUITE)"
  rm -rf "$KDIR" "$CACHE/deb"; mkdir -p "$KDIR" "$CACHE/deb"
  # apt-get download warns that its _apt user cannot write here; it works.
  (cd "$CACHE/deb" && "${APTK[@]}" download "${pkgs[@]}") >"$CACHE/download.log" 2>&1 \
    || die 2 "apt-get download ${pkgs[*]} failed; see $CACHE/download.log"
  for f in "$CACHE"/deb/*.deb; do dpkg-deb -x "$f" "$KDIR"; done
  rm -rf "$CACHE/deb"
  base=$KDIR; [ -d "$KDIR/usr/lib/modules/$KVER" ] && base=$KDIR/usr
  depmod -b "$base" "$KVER" 2>>"$CACHE/download.log"
  touch "$KDIR/.done"
  say "guest kernel ready in $(secs "$t")s"
fi
echo "$KPKG" >"$CACHE/kernel-$SUITE"
MODDIR=$KDIR/lib/modules/$KVER
[ -d "$KDIR/usr/lib/modules/$KVER" ] && MODDIR=$KDIR/usr/lib/modules/$KVER
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || VMLINUZ=$MODDIR/vmlinuz
[ -f "$VMLINUZ" ] || die 125 "no vmlinuz in $KDIR (remove it to fetch again)"

# ---------------------------------------------------------------- initramfs --
# Named by a hash of what goes in, so a change to init or to the module list
# builds a new one, and a run in progress keeps the one it booted with.
key=$( { cat "$RIG/init" /bin/busybox; echo "$MODS|$MODS_OPTIONAL"; } | sha256sum | cut -c1-16)
INITRD=$CACHE/initrd-$KVER-$key.cpio.gz
if [ ! -f "$INITRD" ]; then
  t=${EPOCHREALTIME/./}
  ir=$CACHE/initramfs.tmp
  rm -rf "$ir"; mkdir -p "$ir"/{bin,dev,proc,sys,mods,tmp}
  cp /bin/busybox "$ir/bin/busybox"
  cp "$RIG/init" "$ir/init"; chmod +x "$ir/init"
  declare -A seen=()
  order=()
  add_mod() { # $1: path relative to MODDIR, $2: required|optional; deps first
    local d
    [ -n "${seen[$1]:-}" ] && return
    seen[$1]=1
    for d in $(awk -v m="$1:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$MODDIR/modules.dep"); do
      add_mod "$d" "$2"
    done
    order+=("$1 $2")
  }
  # path of module $1 in modules.dep or modules.builtin (kernel/.../$1.ko[.xz])
  find_mod() { awk -F: -v n="/$1.ko" '{ p = $1; sub(/\.(xz|zst|gz)$/, "", p) } index(p, n) && index(p, n) == length(p) - length(n) + 1 { print $1; exit }' "$2"; }
  for kind in required optional; do
    if [ $kind = required ]; then list=$MODS; else list=$MODS_OPTIONAL; fi
    for m in $list; do
      p=$(find_mod "$m" "$MODDIR/modules.dep")
      if [ -n "$p" ]; then add_mod "$p" $kind; continue; fi
      [ -f "$MODDIR/modules.builtin" ] && [ -n "$(find_mod "$m" "$MODDIR/modules.builtin")" ] && continue
      [ $kind = optional ] || die 125 "kernel $KVER has no module $m (neither loadable nor built in)"
    done
  done
  # busybox insmod wants plain ELF: unpack compressed modules here.
  for e in "${order[@]}"; do
    read -r path kind <<<"$e"
    name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
    case "$path" in
      *.xz) xz -dc "$MODDIR/$path" ;;
      *.zst) zstd -qdc "$MODDIR/$path" ;;
      *.gz) gzip -dc "$MODDIR/$path" ;;
      *) cat "$MODDIR/$path" ;;
    esac >"$ir/mods/$name"
    echo "$name $kind" >>"$ir/mods/order"
  done
  (cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$ir"
  # Older builds: qemu reads its initrd whole at start, so once a few minutes
  # have passed no run can still need them.
  find "$CACHE" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -newer "$INITRD" -mmin +10 -delete
  say "initramfs built in $(secs "$t")s (${#order[@]} modules)"
fi

# ----------------------------------------------------------------- run dir --
mkdir -p "$CACHE/runs"
# Failed runs keep their directory for a look; a day later it goes.
find "$CACHE/runs" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
: >"$RUN/out"; : >"$RUN/err"; : >"$RUN/console.log"
# The guest sources this: the variables passed through, the repository, CMD.
{
  for v in PATH HOME CARGO_TARGET_DIR ${RXE_ENV:-}; do
    [ -n "${!v+x}" ] || continue
    val=${!v}
    # a relative target dir meant "relative to where run.sh was started"
    if [ "$v" = CARGO_TARGET_DIR ] && [ "${val#/}" = "$val" ]; then val=$PWD/$val; fi
    printf 'export %s=%q\n' "$v" "$val"
  done
  printf 'RXE_REPO=%q\n' "$REPO"
  printf 'RXE_CMD=('; printf ' %q' "$@"; printf ' )\n'
} >"$RUN/env"

# ------------------------------------------------------------------- accel --
qemu_cmd() { # $1: kvm|tcg; $2: extra kernel arguments; $3: console file
  local cpu
  if [ "$1" = kvm ]; then cpu=(-accel kvm -cpu host); else cpu=(-accel tcg,thread=multi -cpu max); fi
  QEMU=(qemu-system-x86_64 "${cpu[@]}" -m "${RXE_MEM_MB:-2048}" -smp 2
    -display none -monitor none -no-reboot -nodefaults -nic none
    -serial "file:$3"
    -kernel "$VMLINUZ" -initrd "$INITRD"
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rxe.run=$RUN rxe.guest=$RIG/guest.sh $2"
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$RUN,mount_tag=run,security_model=none,multidevs=remap")
}

ACCEL=${RXE_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  ACCEL=tcg
  if [ -w /dev/kvm ]; then
    # A /dev/kvm can exist and still not run a stock kernel (nested
    # "kvm-pvm": qemu aborts on an MSR, or the guest hangs with no output).
    # The probe boots with rxe.probe, where init powers off as soon as the
    # kernel reaches it. Its verdict is cached per host kernel, qemu and
    # guest kernel, because on such a host it costs RXE_KVM_PROBE_S each time.
    probe_key=$(echo "$(uname -r) $(qemu-system-x86_64 --version | head -1) $KVER" | sha256sum | cut -c1-16)
    verdict=$CACHE/kvm-probe-$probe_key
    if [ ! -f "$verdict" ]; then
      t=${EPOCHREALTIME/./}
      qemu_cmd kvm rxe.probe=1 "$RUN/probe.log"
      # (in a subshell: qemu may abort, and bash would report that on stderr)
      (timeout -k 5 "${RXE_KVM_PROBE_S:-20}" "${QEMU[@]}" </dev/null >"$RUN/probe.out" 2>&1 || true) 2>/dev/null
      if grep -q '\[rxe\] kernel up' "$RUN/probe.log" 2>/dev/null; then echo kvm >"$verdict"; else echo tcg >"$verdict"; fi
      say "KVM probe: $(cat "$verdict") ($(secs "$t")s; cached in $verdict)"
    fi
    ACCEL=$(cat "$verdict")
  fi
fi
flock -u 9

# -------------------------------------------------------------------- boot --
# A guest that never reached its root filesystem never ran CMD, so it boots
# again (RXE_BOOT_TRIES in all): the stock kernel under TCG has been seen,
# rarely, to oops while patching its own code at boot ("Oops: int3").
qemu_cmd "$ACCEL" "" "$RUN/console.log"
TRIES=${RXE_BOOT_TRIES:-3}
cleanup() { kill "$qpid" 2>/dev/null || true; }
trap 'exit 130' INT TERM
for try in $(seq "$TRIES"); do
  : >"$RUN/out"; : >"$RUN/err"; : >"$RUN/console.log"; rm -f "$RUN/rc"
  say "booting the guest (accel=$ACCEL, timeout ${TIMEOUT_S}s, run dir $RUN)"
  tb=${EPOCHREALTIME/./}
  timeout -k 5 "$TIMEOUT_S" "${QEMU[@]}" </dev/null >"$RUN/qemu.out" 2>&1 &
  qpid=$!
  trap cleanup EXIT
  # CMD's stdout and stderr arrive in the run dir as the guest writes them.
  tail -n +1 -s 0.2 -f --pid="$qpid" "$RUN/out" &
  tail_out=$!
  tail -n +1 -s 0.2 -f --pid="$qpid" "$RUN/err" >&2 &
  tail_err=$!
  set +e
  wait "$qpid"
  qrc=$?
  set -e
  wait "$tail_out" "$tail_err" 2>/dev/null || true
  trap - EXIT
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ] || grep -q '^\[rxe\] root ready' "$RUN/console.log" \
    || grep -q '^\[rxe\] FATAL: ' "$RUN/console.log" || [ "$try" = "$TRIES" ]; then
    break
  fi
  why=$(grep -m1 -E 'Oops|Kernel panic|BUG:' "$RUN/console.log" || echo "no kernel message")
  cp "$RUN/console.log" "$RUN/console.try$try.log"
  say "the guest did not reach its root filesystem (try $try of $TRIES: $why); booting again"
done

# The guest's own milestones, as one line of timings.
marks=$(sed -n 's/^\[rxe\] \(.*\) after \([0-9.]*\)s.*/\1 \2s/p' "$RUN/console.log" | paste -sd, - | sed 's/,/, /g')
say "guest ran $(secs "$tb")s wall (accel=$ACCEL; guest uptime at: ${marks:-nothing})"
gid=$(sed -n 's/^\[rxe\] rxe ready .*(\(GID index.*\))/\1/p' "$RUN/console.log")
[ -z "$gid" ] || say "$gid"

fail() {
  local rc=$1
  shift
  say "error: $*"
  say "last lines of the guest console ($RUN/console.log):"
  tail -n 25 "$RUN/console.log" | sed 's/^/    /' >&2
  if [ -s "$RUN/qemu.out" ]; then say "qemu said:"; sed 's/^/    /' "$RUN/qemu.out" >&2; fi
  exit "$rc"
}
[ "$qrc" = 124 ] || [ "$qrc" = 137 ] && fail 124 "hard timeout: the guest ran longer than RXE_TIMEOUT_S=${TIMEOUT_S}s"
reason=$(sed -n 's/^\[rxe\] FATAL: //p' "$RUN/console.log" | head -1)
[ -z "$reason" ] || fail 125 "guest: $reason"
grep -q '^\[rxe\] root ready' "$RUN/console.log" || fail 125 "the guest did not boot to its root filesystem (qemu exit $qrc)"
[ -s "$RUN/rc" ] || fail 125 "the guest stopped before CMD finished (qemu exit $qrc)"
rc=$(cat "$RUN/rc")
say "exit $rc: $*"
[ "${RXE_KEEP:-0}" = 1 ] || rm -rf "$RUN"
exit "$rc"
