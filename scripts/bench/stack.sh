#!/usr/bin/env bash
# The demo stack (layouts/demo: builder bob, glibc <- hello <- greeting) built
# on the test world's stand-in stage3, side by side in one run:
#  - kiln build, cold (empty cache: no builder states, no binary packages);
#  - kiln build again with nothing changed (goal: under 0.3 s);
#  - kiln build after one leaf's build.sh changed (goal: under 30 % of that
#    leaf's cold time; it rebuilds from the binary packages);
#  - the same stack with `podman build`, as a user would write it without
#    kiln, kubler-style: a build-container image per image (FROM the parent's
#    build container, so USE flags and build deps carry down, running the same
#    bob-core/build-root.sh with the distfiles bound and a binpkgs cache
#    mount), and the image itself FROM its parent, COPYing the emerged root;
#    built cold, again with nothing changed, and after the same leaf change
#    (podman's layer cache and the binpkgs cache mount decide what reruns).
# Prints the times and the ratios against the goals (kiln cold at most 0.7 of
# podman's). Works as root, or as a user with a subordinate id range (podman
# and kiln both rootless then). KILN=path/to/kiln skips the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
repo=$PWD

command -v podman >/dev/null || die "podman is missing: run scripts/test-setup"
scripts/test-setup >/dev/null
# shellcheck disable=SC1091
. "${KILN_TEST_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test/env}"
world=$KILN_TEST_WORLD
# shellcheck disable=SC1091
. "$world/world.env"
if [ -z "${KILN:-}" ]; then
  say Building "kiln (release)"
  cargo build --release --locked --quiet
  KILN=$PWD/target/release/kiln
fi

work=$(mktemp -d /tmp/kiln-bench-stack.XXXXXX)
pm=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver overlay)
cleanup() {
  "${pm[@]}" rmi -af >/dev/null 2>&1 || true
  "${pm[@]}" system reset -f >/dev/null 2>&1 || true
  # layer dirs of a rootless build belong to subordinate ids
  rm -rf "$work" 2>/dev/null || podman unshare rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# --- kiln -----------------------------------------------------------------
project=$work/kiln
mkdir -p "$project/layouts"
cp -a layouts/demo "$project/layouts/"
cp -a bob-core "$project/"
cat >"$project/kiln.toml" <<TOML
layout = "oci"
cache = ".cache"
[sources]
mirrors = ["file://$world/mirror"]
keys = ["$world/$KILN_WORLD_RELEASE_KEY"]
TOML
kbuild() { (cd "$project" && KILN_NO_PROGRESS=1 "$KILN" build demo --project "$project" 2>"$work/kiln.err"); }

say Timing "kiln build, cold"
t=$(now)
kbuild >"$work/kiln-cold.txt" || { cat "$work/kiln.err"; die "kiln build failed"; }
kiln_cold=$(since "$t")
leaf_cold=$(awk '$1 == "demo/greeting" { sub(/s$/, "", $4); print $4 }' "$work/kiln-cold.txt")

say Timing "kiln build, nothing changed (median of 5)"
noops=()
for _ in 1 2 3 4 5; do
  t=$(now)
  kbuild >/dev/null
  noops+=("$(since "$t")")
done
kiln_noop=$(printf '%s\n' "${noops[@]}" | sort -n | sed -n 3p)
grep -q "0 built, 4 cached" "$work/kiln.err" || die "the no-op build rebuilt something: $(cat "$work/kiln.err")"

say Timing "kiln build after demo/greeting's build.sh changed"
echo "# changed by scripts/bench/stack.sh" >>"$project/layouts/demo/images/greeting/build.sh"
t=$(now)
kbuild >/dev/null
kiln_leaf=$(since "$t")
grep -q "1 built, 3 cached" "$work/kiln.err" || die "not only the leaf was rebuilt: $(cat "$work/kiln.err")"

# --- podman ---------------------------------------------------------------
ctx=$work/context
mkdir -p "$ctx/config"
cp -a bob-core "$ctx/"
cp -a "$world/$KILN_WORLD_DISTFILES" "$ctx/distfiles"
cp "$world/$KILN_WORLD_SNAPSHOT" "$ctx/snapshot.tar.xz"
cp -a layouts/demo/builders/bob "$ctx/config/bob"
for i in glibc hello greeting; do
  cp -a "layouts/demo/images/$i" "$ctx/config/$i"
  # as kiln does: build-root.sh wants a build.sh, if only an empty one
  [ -f "$ctx/config/$i/build.sh" ] || echo "# no build.sh" >"$ctx/config/$i/build.sh"
done
packages() { sed -n 's/^packages = \[\(.*\)\]/\1/p' "layouts/demo/images/$1/image.toml" | tr -d '",'; }

# One RUN per build container, as kubler's bob images: the parent's package
# list becomes package.provided, the previous root and reports are dropped.
bob_run() { # NAME PACKAGES
  cat <<EOF
COPY config/$1 /kiln/config/$1
RUN --mount=type=bind,source=distfiles,target=/var/cache/distfiles,rw=true \\
    --mount=type=cache,id=kiln-bench-binpkgs,target=/var/cache/binpkgs \\
    mkdir -p /kiln/parent && { cp /kiln/out/package.installed /kiln/parent/ 2>/dev/null || true; } && \\
    rm -rf /kiln/out /emerge-root && \\
    KILN_IMAGE=demo/$1 KILN_PACKAGES="$2" KILN_CONFIG=/kiln/config/$1 bash /kiln/bob-core/build-root.sh
EOF
}
pbuild() { # TAG  (Containerfile on stdin)
  "${pm[@]}" build --quiet --pull=never --network none -t "$1" -f - "$ctx" \
    >/dev/null 2>"$work/podman.log" || { cat "$work/podman.log"; die "podman build $1 failed"; }
}
# The whole stack, as a CI job would run it: podman's own layer cache
# decides what is rebuilt.
podman_stack() {
  pbuild kiln-bench/base <<EOF
FROM kiln-bench/stage3
ADD snapshot.tar.xz /var/db/repos/
COPY bob-core /kiln/bob-core
EOF
  { echo "FROM kiln-bench/base"; bob_run bob ""; } | pbuild kiln-bench/bob-builder
  local from_bob=kiln-bench/bob-builder from_image=scratch i cmd
  for i in glibc hello greeting; do
    { echo "FROM $from_bob"; bob_run "$i" "$(packages "$i")"; } | pbuild "kiln-bench/bob-$i"
    cmd=$(sed -n 's/^cmd = //p' "layouts/demo/images/$i/image.toml")
    {
      echo "FROM $from_image"
      echo "COPY --from=kiln-bench/bob-$i /emerge-root/ /"
      [ -z "$cmd" ] || echo "CMD $cmd"
    } | pbuild "kiln-bench/$i"
    from_bob=kiln-bench/bob-$i from_image=kiln-bench/$i
  done
}
say Timing "podman build, cold"
t=$(now)
"${pm[@]}" import --quiet "$world/$KILN_WORLD_STAGE3" kiln-bench/stage3 >/dev/null
podman_stack
podman_cold=$(since "$t")
"${pm[@]}" run --rm --network none kiln-bench/greeting | grep -q "Hello, container!" ||
  die "the podman-built greeting does not run"
say Timing "podman build, nothing changed"
t=$(now)
podman_stack
podman_noop=$(since "$t")
say Timing "podman build after demo/greeting's build.sh changed"
bob_id() { "${pm[@]}" image inspect --format '{{.Id}}' kiln-bench/bob-greeting; }
before=$(bob_id)
echo "# changed by scripts/bench/stack.sh" >>"$ctx/config/greeting/build.sh"
t=$(now)
podman_stack
podman_leaf=$(since "$t")
[ "$(bob_id)" != "$before" ] || die "podman did not rebuild demo/greeting's build container"

# --- results --------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g ? "PASS" : "MISS") }'; }
cold_ratio=$(ratio "$kiln_cold" "$podman_cold")
leaf_ratio=$(ratio "$kiln_leaf" "$leaf_cold")
printf '\n%-44s %9s %9s %6s\n' "demo stack (4 steps), $(nproc) cores" "seconds" "ratio" "goal"
printf '%-44s %9s\n' "podman build, cold" "$podman_cold"
printf '%-44s %9s %9s %6s\n' "kiln build, cold" "$kiln_cold" "$cold_ratio" "$(verdict "$cold_ratio" 0.7) <= 0.70 of podman"
printf '%-44s %9s\n' "podman build, nothing changed" "$podman_noop"
printf '%-44s %9s %9s %6s\n' "kiln build, nothing changed (median of 5)" "$kiln_noop" "$(ratio "$kiln_noop" "$podman_noop")" "$(verdict "$kiln_noop" 0.3) < 0.3 s"
printf '%-44s %9s\n' "podman build, one leaf changed (binpkgs)" "$podman_leaf"
printf '%-44s %9s %9s %6s\n' "kiln build, one leaf changed (binpkgs)" "$kiln_leaf" "$leaf_ratio" "$(verdict "$leaf_ratio" 0.3) < 0.30 of the leaf's cold ${leaf_cold}s"
printf '%-44s %9s %9s\n' "  the same against podman's" "" "$(ratio "$kiln_leaf" "$podman_leaf")"
