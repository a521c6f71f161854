#!/usr/bin/env bash
# Time `kiln check` over a generated stack of 500 images (10 namespaces of
# 50 images, each image the parent of the next five-deep chain, one builder
# per namespace, parents crossing namespaces) to show that checking a big
# stack stays well under a second.
#
# Usage: scripts/bench/check.sh [KILN_BINARY]   (default: target/debug/kiln)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

kiln=$(realpath "${1:-target/debug/kiln}")
[ -x "$kiln" ] || die "no kiln binary at $kiln: run cargo build first"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

namespaces=10 per_namespace=50
echo 'tag = "bench"' > "$dir/kiln.toml"
for n in $(seq 1 $namespaces); do
  ns="ns$n"
  mkdir -p "$dir/layouts/$ns/builders/bob"
  printf 'builder = "%s/bob"\n[owner]\nname = "Bench"\nemail = "bench@example.org"\n' "$ns" > "$dir/layouts/$ns/namespace.toml"
  printf 'parent = "stage3"\npackages = ["app-portage/flaggie"]\n' > "$dir/layouts/$ns/builders/bob/builder.toml"
  for i in $(seq 1 $per_namespace); do
    img="$dir/layouts/$ns/images/img$i"
    mkdir -p "$img"
    if [ $((i % 5)) = 1 ]; then
      # The head of each chain extends an image of the previous namespace.
      if [ "$n" = 1 ]; then parent=scratch; else parent="ns$((n - 1))/img$i"; fi
    else
      parent="$ns/img$((i - 1))"
    fi
    cat > "$img/image.toml" <<TOML
description = "generated image $i of $ns"
parent = "$parent"
packages = ["app-misc/hello", ">=dev-libs/openssl-3.0:0/3[-test]", "=sys-libs/zlib-1.3*"]
cmd = ["/usr/bin/hello"]
ports = ["80/tcp", "443"]
volumes = ["/data"]
workdir = "/srv"
stop_signal = "SIGTERM"

[env]
LANG = "C.UTF-8"

[labels]
"org.example.index" = "$i"

[healthcheck]
cmd = ["/usr/bin/hello"]
interval = "30s"
timeout = "3s"
TOML
    printf 'configure_rootfs_build()\n{\n    update_use app-misc/hello +nls\n}\n' > "$img/build.sh"
    echo "# $ns/img$i" > "$img/README.md"
  done
done

say Checking "$((namespaces * per_namespace)) images with $kiln"
"$kiln" check --project "$dir" >/dev/null 2>&1 || "$kiln" check --project "$dir"
best=
for run in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$kiln" --quiet check --project "$dir"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "run $run: ${ms} ms"
  if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
say Best "${best} ms for kiln check over $((namespaces * per_namespace)) images"
