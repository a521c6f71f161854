#!/usr/bin/env bash
# Benchmark kiln's layer writer against the usual shell pipelines, on a tree
# of about 1 GiB: many small files and some large ones copied from /usr (so
# the data compresses like real images do), plus symlinks.
#   kiln commit --compression gzip   vs   tar -cf - | pigz -6
#   kiln commit --compression zstd   vs   tar -cf - | zstd -T0 -3
# Prints times, speed-ups (pipeline time / kiln time) and kiln's peak RSS.
# SIZE_MB=... changes the tree's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

ensure_apt_packages pigz zstd time
ensure_rust
say Building "kiln --release"
cargo build --locked --release --quiet
kiln="$PWD/target/release/kiln"

size_mb=${SIZE_MB:-1024}
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/tree"
mkdir -p "$tree"

say Making "a ~${size_mb} MiB tree in $tree"
# The selections below stop reading their input early (SIGPIPE upstream).
set +o pipefail
# Small files: /usr's files in a fixed order until 3/4 of the size.
small_budget=$((size_mb * 1024 * 1024 * 3 / 4))
find /usr/share /usr/lib /usr/bin -xdev -type f -size -1024k -readable -printf '%s %p\0' 2>/dev/null |
  sort -z -k2 |
  awk -v RS='\0' -v ORS='\0' -v budget="$small_budget" '
    { n = index($0, " "); total += substr($0, 1, n - 1); if (total > budget) exit; print substr($0, n + 1) }' |
  tar --null -T - -cf - 2>/dev/null | tar -C "$tree" -xf -
# Large files: concatenated binaries, 32 MiB each, until the size is reached.
have=$(du -sm "$tree" | cut -f1)
i=0
while [ "$have" -lt "$size_mb" ]; do
  find /usr/lib /usr/bin -xdev -type f -size +1024k -readable 2>/dev/null | sort | sed -n "$((i * 7 + 1)),$((i * 7 + 40))p" |
    xargs cat 2>/dev/null | head -c $((32 * 1024 * 1024)) >"$tree/large-$i.bin"
  i=$((i + 1))
  have=$(du -sm "$tree" | cut -f1)
done
for j in $(seq 1 2000); do ln -s "large-$((j % i)).bin" "$tree/link-$j"; done
set -o pipefail
files=$(find "$tree" | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
say Tree "$files entries, $((bytes / 1024 / 1024)) MiB"
# Warm the page cache so every contender reads from memory.
tar -C "$tree" -cf - . >/dev/null

now() { date +%s.%N; }

time_cmd() { # OUT-VAR CMD...: run, store seconds in OUT-VAR
  local var=$1 t0 t1
  shift
  sync
  t0=$(now)
  "$@"
  t1=$(now)
  printf -v "$var" '%.2f' "$(python3 -c "print($t1 - $t0)")"
}

kiln_commit() { # COMPRESSION RSS-VAR
  local layout="$work/oci-$1"
  rm -rf "$layout"
  SOURCE_DATE_EPOCH=1700000000 /usr/bin/time -v -o "$work/time-$1" \
    "$kiln" commit "$tree" --layout "$layout" --ref bench --compression "$1" --quiet
}

pipeline_gzip() { tar -C "$tree" -cf - . | pigz -6 >"$work/pipe.tar.gz"; }
pipeline_zstd() { tar -C "$tree" -cf - . | zstd -q -T0 -3 -o "$work/pipe.tar.zst"; }

time_cmd t_pigz pipeline_gzip
time_cmd t_kiln_gzip kiln_commit gzip
time_cmd t_zstd pipeline_zstd
time_cmd t_kiln_zstd kiln_commit zstd

rss() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$work/time-$1"; }
blob_size() { find "$work/oci-$1/blobs/sha256" -type f -size +1M -printf '%s\n' | sort -n | tail -1; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mb() { python3 -c "print(f'{$1 / 1048576:.0f}')"; }

printf '\n%-34s %8s %10s %10s\n' "tree: $((bytes / 1048576)) MiB, $files entries" seconds "out MiB" "RSS MiB"
printf '%-34s %8s %10s %10s\n' "tar | pigz -6" "$t_pigz" "$(mb "$(stat -c %s "$work/pipe.tar.gz")")" -
printf '%-34s %8s %10s %10s\n' "kiln commit --compression gzip" "$t_kiln_gzip" "$(mb "$(blob_size gzip)")" "$(rss gzip)"
printf '%-34s %8s %10s %10s\n' "tar | zstd -T0 -3" "$t_zstd" "$(mb "$(stat -c %s "$work/pipe.tar.zst")")" -
printf '%-34s %8s %10s %10s\n' "kiln commit --compression zstd" "$t_kiln_zstd" "$(mb "$(blob_size zstd)")" "$(rss zstd)"
printf '\nspeed-up gzip (pigz / kiln): %sx   (goal >= 1.3)\n' "$(ratio "$t_pigz" "$t_kiln_gzip")"
printf 'speed-up zstd (zstd / kiln): %sx   (goal >= 1.0)\n' "$(ratio "$t_zstd" "$t_kiln_zstd")"
printf 'kiln peak RSS: gzip %s MiB, zstd %s MiB (goal < 64), on %s cores\n' "$(rss gzip)" "$(rss zstd)" "$(nproc)"
