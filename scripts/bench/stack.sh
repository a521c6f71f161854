#!/usr/bin/env bash
# scripts/bench/stack.sh [demo|gentoo]: a stack built on the test world's
# stand-in stage3, side by side in one run. demo (the default) is
# layouts/demo (builder bob, glibc <- hello <- greeting: a few lines of C);
# gentoo is layouts/gentoo on the world's real software (busybox, s6, nginx,
# redis... compiled from their upstream tarballs: minutes of compiling, so
# the ratios measure what users wait for, not Portage's fixed cost).
#  - kiln build, cold (empty cache: no builder states, no binary packages),
#    with kiln's own peak memory (its VmHWM; emerge runs in containers);
#  - kiln build again with nothing changed (goal: under 0.3 s);
#  - kiln build after one leaf's build.sh changed (goal: under 30 % of that
#    leaf's cold time; it rebuilds from the binary packages);
#  - the same stack with `podman build`, as a user would write it without
#    kiln, kubler-style: a build-container image per image (FROM the parent's
#    build container, so USE flags and build deps carry down, running the same
#    bob-core/build-root.sh with the distfiles bound and a binpkgs cache
#    mount, the parent image's accounts copied in), and the image itself FROM
#    its parent, COPYing the emerged root; built cold, again with nothing
#    changed, and after the same leaf change (podman's layer cache and the
#    binpkgs cache mount decide what reruns).
# Prints the times and the ratios against the goals (kiln cold at most 0.7 of
# podman's). Works as root, or as a user with a subordinate id range (podman
# and kiln both rootless then). KILN=path/to/kiln skips the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

stack=${1:-demo}
case $stack in
  demo) leaf=greeting check=(greeting) expect="Hello, container!" ;;
  gentoo) leaf=nginx check=(redis redis-server --version) expect="Redis server v=7" ;;
  *) die "usage: scripts/bench/stack.sh [demo|gentoo] (the stacks of layouts/)" ;;
esac

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
# podman keeps RUN --mount=type=cache dirs outside --root, in
# /var/tmp/buildah-cache[-UID]/ID, across runs: an id of this run's own, or
# "cold" would install the binary packages an earlier run made.
cache_id=kiln-bench-binpkgs-$(basename "$work")
cleanup() {
  rm -rf /var/tmp/buildah-cache*/"$cache_id" 2>/dev/null ||
    podman unshare rm -rf "/var/tmp/buildah-cache-$(id -u)/$cache_id" 2>/dev/null || true
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
cp -a "layouts/$stack" "$project/layouts/"
cp -a bob-core "$project/"
cat >"$project/kiln.toml" <<TOML
layout = "oci"
cache = ".cache"
[sources]
mirrors = ["file://$world/mirror"]
keys = ["$world/$KILN_WORLD_RELEASE_KEY"]
TOML
kbuild() { (cd "$project" && KILN_NO_PROGRESS=1 exec "$KILN" build "$stack" --project "$project" 2>"$work/kiln.err"); }

# The images in build order, as kiln plans them, and the step count.
images=()
while read -r ref; do images+=("${ref#"$stack"/}"); done < <(
  KILN_NO_PROGRESS=1 "$KILN" build "$stack" --dry-run --project "$project" |
    sed -n 's/^ *[0-9]*\. image \([^ ]*\) ->.*/\1/p'
)
[ ${#images[@]} -gt 0 ] || die "kiln build --dry-run listed no images of $stack"
steps=$((${#images[@]} + 1))

say Timing "kiln build of $stack, cold"
t=$(now)
kbuild >"$work/kiln-cold.txt" &
kiln_pid=$!
# kiln's own high-water mark (VmHWM only grows): the largest of its
# processes still named kiln (it runs its work in a child that entered the
# user namespace); emerge and the compilers, exec'd in the containers, are
# not kiln's
peak=0
while kill -0 "$kiln_pid" 2>/dev/null; do
  for pid in $(pgrep -x kiln); do
    p=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -z "$p" ] || [ "$p" -le "$peak" ] || peak=$p
  done
  sleep 0.1
done
wait "$kiln_pid" || { cat "$work/kiln.err"; die "kiln build failed"; }
kiln_cold=$(since "$t")
# the summary's columns: IMAGE SIZE LAYER LAYERS TIME STATUS, sizes as "N MiB"
leaf_cold=$(awk -v ref="$stack/$leaf" '$1 == ref { sub(/s$/, "", $7); print $7 }' "$work/kiln-cold.txt")
[ -n "$leaf_cold" ] || die "no summary line for $stack/$leaf in: $(cat "$work/kiln-cold.txt")"

say Timing "kiln build, nothing changed (median of 5)"
noops=()
for _ in 1 2 3 4 5; do
  t=$(now)
  kbuild >/dev/null
  noops+=("$(since "$t")")
done
kiln_noop=$(printf '%s\n' "${noops[@]}" | sort -n | sed -n 3p)
grep -q "0 built, $steps cached" "$work/kiln.err" || die "the no-op build rebuilt something: $(cat "$work/kiln.err")"

say Timing "kiln build after $stack/$leaf's build.sh changed"
echo "# changed by scripts/bench/stack.sh" >>"$project/layouts/$stack/images/$leaf/build.sh"
t=$(now)
kbuild >/dev/null
kiln_leaf=$(since "$t")
grep -q "1 built, $((steps - 1)) cached" "$work/kiln.err" || die "not only the leaf was rebuilt: $(cat "$work/kiln.err")"

# --- podman ---------------------------------------------------------------
ctx=$work/context
mkdir -p "$ctx/config"
cp -a bob-core "$ctx/"
cp -a "$world/$KILN_WORLD_DISTFILES" "$ctx/distfiles"
cp "$world/$KILN_WORLD_SNAPSHOT" "$ctx/snapshot.tar.xz"
cp -a "layouts/$stack/builders/bob" "$ctx/config/bob"
for i in "${images[@]}"; do
  cp -a "layouts/$stack/images/$i" "$ctx/config/$i"
  # as kiln does: build-root.sh wants a build.sh, if only an empty one
  [ -f "$ctx/config/$i/build.sh" ] || echo "# no build.sh" >"$ctx/config/$i/build.sh"
done
# a top-level key of an image.toml or builder.toml (before any [table])
key() { awk -v k="$2" '/^\[/ { exit } $1 == k && $2 == "=" { sub(/^[^=]*= */, ""); print }' "$1"; }
packages() { key "$1" packages | tr -d '[]",'; }
parent() { key "layouts/$stack/images/$1/image.toml" parent | tr -d '"'; }

# One RUN per build container, as kubler's bob images: the config at
# /config (build.sh hooks read it there), the parent's package list becomes
# package.provided, the parent image's accounts seed the root, the previous
# root and reports are dropped.
bob_run() { # NAME PACKAGES [BUILDER-PACKAGES]
  cat <<EOF
COPY config/$1 /kiln/config/$1
RUN --mount=type=bind,source=distfiles,target=/var/cache/distfiles,rw=true \\
    --mount=type=cache,id=$cache_id,target=/var/cache/binpkgs \\
    mkdir -p /kiln/parent && { cp /kiln/out/package.installed /kiln/parent/ 2>/dev/null || true; } && \\
    rm -rf /kiln/out /emerge-root /config /kiln/parent-accounts && cp -a /kiln/config/$1 /config && \\
    if [ -d /kiln/parent-etc-$1 ]; then mkdir -p /kiln/parent-accounts && \\
      for f in passwd group shadow gshadow; do [ ! -f /kiln/parent-etc-$1/\$f ] || cp -p /kiln/parent-etc-$1/\$f /kiln/parent-accounts/; done; fi && \\
    KILN_IMAGE=$stack/$1 KILN_PACKAGES="$2" KILN_BUILDER_PACKAGES="${3:-}" KILN_CONFIG=/config bash /kiln/bob-core/build-root.sh
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
  {
    echo "FROM kiln-bench/base"
    bob_run bob "" "$(packages "layouts/$stack/builders/bob/builder.toml")"
  } | pbuild kiln-bench/bob-builder
  local i p from_bob from_image cmd
  for i in "${images[@]}"; do
    p=$(parent "$i")
    if [ "$p" = scratch ]; then
      from_bob=kiln-bench/bob-builder from_image=scratch
    else
      from_bob=kiln-bench/bob-${p#"$stack"/} from_image=kiln-bench/${p#"$stack"/}
    fi
    {
      echo "FROM $from_bob"
      [ "$p" = scratch ] || echo "COPY --from=$from_image /etc/ /kiln/parent-etc-$i/"
      bob_run "$i" "$(packages "layouts/$stack/images/$i/image.toml")"
    } | pbuild "kiln-bench/bob-$i"
    cmd=$(key "layouts/$stack/images/$i/image.toml" cmd)
    {
      echo "FROM $from_image"
      echo "COPY --from=kiln-bench/bob-$i /emerge-root/ /"
      [ -z "$cmd" ] || echo "CMD $cmd"
    } | pbuild "kiln-bench/$i"
  done
}
say Timing "podman build, cold"
t=$(now)
"${pm[@]}" import --quiet "$world/$KILN_WORLD_STAGE3" kiln-bench/stage3 >/dev/null
podman_stack
podman_cold=$(since "$t")
"${pm[@]}" run --rm --network none "kiln-bench/${check[0]}" "${check[@]:1}" | grep -q "$expect" ||
  die "the podman-built $stack/${check[0]} does not run"
say Timing "podman build, nothing changed"
t=$(now)
podman_stack
podman_noop=$(since "$t")
say Timing "podman build after $stack/$leaf's build.sh changed"
bob_id() { "${pm[@]}" image inspect --format '{{.Id}}' "kiln-bench/bob-$leaf"; }
before=$(bob_id)
echo "# changed by scripts/bench/stack.sh" >>"$ctx/config/$leaf/build.sh"
t=$(now)
podman_stack
podman_leaf=$(since "$t")
[ "$(bob_id)" != "$before" ] || die "podman did not rebuild $stack/$leaf's build container"

# --- results --------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g ? "PASS" : "MISS") }'; }
cold_ratio=$(ratio "$kiln_cold" "$podman_cold")
leaf_ratio=$(ratio "$kiln_leaf" "$leaf_cold")
printf '\n%-44s %9s %9s %6s\n' "$stack stack ($steps steps), $(nproc) cores" "seconds" "ratio" "goal"
printf '%-44s %9s\n' "podman build, cold" "$podman_cold"
printf '%-44s %9s %9s %6s\n' "kiln build, cold" "$kiln_cold" "$cold_ratio" "$(verdict "$cold_ratio" 0.7) <= 0.70 of podman"
printf '%-44s %9s\n' "podman build, nothing changed" "$podman_noop"
printf '%-44s %9s %9s %6s\n' "kiln build, nothing changed (median of 5)" "$kiln_noop" "$(ratio "$kiln_noop" "$podman_noop")" "$(verdict "$kiln_noop" 0.3) < 0.3 s"
printf '%-44s %9s\n' "podman build, one leaf changed (binpkgs)" "$podman_leaf"
printf '%-44s %9s %9s %6s\n' "kiln build, one leaf changed (binpkgs)" "$kiln_leaf" "$leaf_ratio" "$(verdict "$leaf_ratio" 0.3) < 0.30 of the leaf's cold ${leaf_cold}s"
printf '%-44s %9s %9s\n' "  the same against podman's" "" "$(ratio "$kiln_leaf" "$podman_leaf")"
printf '%-44s %9s\n' "kiln's peak memory (VmHWM, cold build)" "$((peak / 1024)) MiB"
