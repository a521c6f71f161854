# Shared by the test-world scripts: messages, and gpg in the world's own
# private GNUPGHOME (never the user's keyring, never an agent left behind).
# shellcheck shell=bash

tw_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
. "$tw_dir/../lib.sh"

# The key the world calls "expired" was valid only on 2020-01-01; signatures
# by it are made inside that window so that gpg agrees to make them, and a
# verifier checking expiry against today's date must refuse them.
TW_EXPIRED_CREATED=20200101T000000
TW_EXPIRED_SIGNED=20200101T120000

# gpg KEYDIR ARGS...: gpg on the keys made by scripts/test-world/keys
tw_gpg() {
  local keydir=$1
  shift
  gpg --homedir "$keydir/gnupg" --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@"
}

# tw_fpr KEYDIR NAME: the primary key fingerprint of a world key
tw_fpr() {
  local fpr
  fpr=$(awk -v n="$2" '$1 == n {print $2}' "$1/fingerprints" 2>/dev/null)
  [ -n "$fpr" ] || die "no key named '$2' in $1/fingerprints (known: $(cut -d' ' -f1 "$1/fingerprints" 2>/dev/null | tr '\n' ' ')); run scripts/test-world/keys $1"
  printf '%s\n' "$fpr"
}

# tw_sign KEYDIR NAME MODE IN OUT: MODE is detach (binary-safe, armored) or
# clear (clearsigned text), with the named key's signing (sub)key.
tw_sign() {
  local keydir=$1 name=$2 mode=$3 in=$4 out=$5 fpr time=()
  fpr=$(tw_fpr "$keydir" "$name")
  [ "$name" = expired ] && time=(--faked-system-time "$TW_EXPIRED_SIGNED!")
  rm -f "$out"
  case $mode in
    detach) tw_gpg "$keydir" "${time[@]}" --local-user "$fpr" --armor --output "$out" --detach-sign "$in" ;;
    clear) tw_gpg "$keydir" "${time[@]}" --local-user "$fpr" --output "$out" --clearsign "$in" ;;
    *) die "tw_sign: unknown mode '$mode' (detach or clear)" ;;
  esac
}

# tw_in_root ROOT [--bind SRC DST]... -- CMD...: run CMD chrooted in ROOT with
# /proc (all emerge needs) and the bind mounts (directories or files, e.g.
# /dev nodes), in a private mount namespace so that nothing stays mounted
# when it ends, however it ends.
tw_in_root() {
  local root=$1 binds=()
  shift
  while [ "${1:-}" = --bind ]; do
    binds+=("$2" "$3")
    shift 3
  done
  [ "${1:-}" = -- ] && shift
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root=$1 n=$2
    shift 2
    mount -t proc proc "$root/proc"
    while [ "$n" -gt 0 ]; do
      if [ -d "$1" ]; then mkdir -p "$root$2"; else touch "$root$2"; fi
      mount --bind "$1" "$root$2"
      shift 2
      n=$((n - 2))
    done
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LC_ALL=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' tw_in_root "$root" "${#binds[@]}" "${binds[@]}" "$@"
}

# The host's own Debian mirror (deb822 or one-line format); never a fixed host.
debian_mirror() {
  [ -n "${KILN_DEBIAN_MIRROR:-}" ] && { echo "$KILN_DEBIAN_MIRROR"; return; }
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() { if (deb && main && uri != "") { print uri; found = 1; exit } deb = main = 0; uri = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-/) main = 1 }
      END { if (!found) flush() }' "$f"
  done | head -n1 | grep . && return
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $(i-1) ~ /\]$/) i++; if ($(i+1) !~ /-/) { print $i; exit } }' | grep . ||
    die "no Debian mirror found in /etc/apt/sources.list{,.d/}; set KILN_DEBIAN_MIRROR=http://your.mirror/debian"
}
# tw_unpack WORLD ROOT: the world's stand-in stage3 with its snapshot in
# /var/db/repos/gentoo, unpacked the way a real stage3 is, at ROOT.
tw_unpack() {
  local world=$1 root=$2
  # shellcheck disable=SC1091
  . "$world/world.env"
  mkdir -p "$root"
  tar -xpf "$world/$KILN_WORLD_STAGE3" --xattrs --numeric-owner -C "$root" ||
    die "cannot unpack the stage3 $world/$KILN_WORLD_STAGE3 into $root"
  tar -xpf "$world/$KILN_WORLD_SNAPSHOT" -C "$root/var/db/repos" ||
    die "cannot unpack the snapshot $world/$KILN_WORLD_SNAPSHOT into $root/var/db/repos"
}
