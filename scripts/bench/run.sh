#!/usr/bin/env bash
# Start-to-exit time of `true` in a busybox image: `kiln run` against
# `podman run --network none` (the same image, pulled once from the same
# layout) and `runc run` on a prepared bundle. 20 runs each (BENCH_RUNS),
# medians and ratios. KILN=path/to/kiln skips the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

runs=${BENCH_RUNS:-20}
if [ -z "${KILN:-}" ]; then
  say Building "kiln (release)"
  cargo build --release --locked --quiet
  KILN=$PWD/target/release/kiln
fi
for tool in umoci podman runc; do command -v $tool >/dev/null || die "$tool is missing: run scripts/test-setup"; done
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test"
[ -n "${CONTAINERS_CONF:-}" ] || export CONTAINERS_CONF="$cache/containers.conf"
[ -f "$CONTAINERS_CONF" ] || write_containers_conf "$CONTAINERS_CONF"

# podman names the image after the layout's path, which must be lowercase
work=/tmp/kiln-bench-$$
mkdir "$work"
image=""
cleanup() {
  [ -z "$image" ] || podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# the image: a busybox-static root in an OCI layout
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true; do ln -s busybox "$work/rootfs/bin/$a"; done
umoci init --layout "$work/layout"
umoci new --image "$work/layout:bb"
umoci insert --image "$work/layout:bb" "$work/rootfs/bin" /bin >/dev/null
export KILN_CACHE_DIR=$work/cache
"$KILN" run --layout "$work/layout" bb -- true 2>/dev/null  # unpack once
image=$(podman pull -q "oci:$work/layout:bb")

# runc's bundle: the same root, `true`, no terminal
mkdir -p "$work/bundle"
cp -a "$work/rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open("config.json", "w"))
PY
)

median_ms() { # CMD... ; prints the median wall time in ms over $runs runs
  local i t0 t1 times=()
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || die "failed: $*"
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f\n", m / 1000}'
}

n=0
runc_once() { n=$((n + 1)); runc run -b "$work/bundle" "kiln-bench-$$-$n"; }

kiln_ms=$(median_ms "$KILN" run --layout "$work/layout" bb -- true)
podman_ms=$(median_ms podman run --rm --network none "$image" true)
runc_ms=$(median_ms runc_once)

printf '%-34s %10s %14s\n' "start-to-exit of true ($runs runs)" "median ms" "kiln / it"
printf '%-34s %10s %14s\n' "kiln run" "$kiln_ms" "1.00"
printf '%-34s %10s %14s\n' "podman run --network none" "$podman_ms" "$(awk "BEGIN {printf \"%.3f\", $kiln_ms / $podman_ms}")"
printf '%-34s %10s %14s\n' "runc run (prepared bundle)" "$runc_ms" "$(awk "BEGIN {printf \"%.2f\", $kiln_ms / $runc_ms}")"
