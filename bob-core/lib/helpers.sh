# bob-core's helper functions for an image's build.sh, with the names and
# meaning gentoo-bb and kubler gave them, so their build.sh files read the
# same here. Sourced by build-root.sh; the unit tests source it alone.
# Paths come from variables so the tests can point them at a temp dir:
#   _PORTAGE_ETC   Portage's config dir (default /etc/portage)
#   _EMERGE_ROOT   the image's root (default /emerge-root)
#   DISTDIR        where download_file stores files (default /var/cache/distfiles)
# shellcheck shell=bash

_PORTAGE_ETC=${_PORTAGE_ETC:-/etc/portage}
_BOB_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_EMERGE_ROOT=${_EMERGE_ROOT:-/emerge-root}

bob_msg() { printf 'bob: %s\n' "$*" >&2; }
bob_die() {
  printf 'bob: error: %s\n' "$*" >&2
  exit 1
}

# The file name a rule for ATOM goes to: one file per package, like kubler.
_bob_conf_file() { # DIR ATOM
  local name=${2#[<>=~]}
  name=${name#=}
  name=${name%%:*}
  name=${name%%[*}
  printf '%s/%s/%s\n' "$_PORTAGE_ETC" "$1" "${name//\//_}"
}

# Merge FLAGS into the line for ATOM in FILE: a flag given again replaces
# its earlier +/- setting, other flags stay.
_bob_merge_line() { # FILE ATOM FLAG...
  local file=$1 atom=$2 line old=() new=() f g keep
  shift 2
  mkdir -p "$(dirname "$file")"
  touch "$file"
  line=$(awk -v a="$atom" '$1 == a {$1 = ""; print; exit}' "$file")
  read -r -a old <<<"$line"
  for f in "$@"; do
    f=${f#+}
    [ -n "$f" ] || continue
    keep=()
    for g in "${old[@]}"; do
      [ "${g#-}" = "${f#-}" ] || keep+=("$g")
    done
    old=("${keep[@]}" "$f")
  done
  new=("${old[@]}")
  awk -v a="$atom" '$1 != a' "$file" >"$file.new"
  [ ${#new[@]} -eq 0 ] || echo "$atom ${new[*]}" >>"$file.new"
  mv "$file.new" "$file"
}

# update_use ATOM FLAG...   set USE flags for ATOM: +flag (or flag) enables, -flag disables
# update_use FLAG...        the same for the global USE in make.conf
update_use() {
  [ $# -ge 1 ] || bob_die "update_use: usage: update_use [ATOM] +FLAG|-FLAG..."
  if [[ $1 == [+-]* ]]; then
    local conf="$_PORTAGE_ETC/make.conf" f
    mkdir -p "$_PORTAGE_ETC"
    for f in "$@"; do
      echo "USE=\"\${USE} ${f#+}\"" >>"$conf"
    done
    return
  fi
  local atom=$1
  shift
  [ $# -ge 1 ] || bob_die "update_use $atom: no USE flags given (e.g. update_use $atom +ssl -doc)"
  _bob_merge_line "$(_bob_conf_file package.use "$atom")" "$atom" "$@"
}

# update_keywords ATOM +KEYWORD|-KEYWORD...   accept (or stop accepting) keywords for ATOM,
# e.g. update_keywords dev-lang/go '+~amd64'; '+**' accepts any keyword
update_keywords() {
  [ $# -ge 2 ] || bob_die "update_keywords: usage: update_keywords ATOM +KEYWORD|-KEYWORD... (e.g. '+~amd64')"
  local atom=$1 file kw add=() drop=()
  shift
  file=$(_bob_conf_file package.accept_keywords "$atom")
  for kw in "$@"; do
    case $kw in
      -*) drop+=("${kw#-}") ;;
      *) add+=("${kw#+}") ;;
    esac
  done
  _bob_merge_line "$file" "$atom" "${add[@]}"
  if [ ${#drop[@]} -gt 0 ]; then
    local line words=() rest=() k d skip
    line=$(awk -v a="$atom" '$1 == a {$1 = ""; print; exit}' "$file")
    read -r -a words <<<"$line"
    for k in "${words[@]}"; do
      skip=
      for d in "${drop[@]}"; do [ "$k" = "$d" ] && skip=1; done
      [ -n "$skip" ] || rest+=("$k")
    done
    awk -v a="$atom" '$1 != a' "$file" >"$file.new"
    [ ${#rest[@]} -eq 0 ] || echo "$atom ${rest[*]}" >>"$file.new"
    mv "$file.new" "$file"
  fi
}

_bob_add_unique() { # FILE LINE
  mkdir -p "$(dirname "$1")"
  touch "$1"
  grep -qxF -- "$2" "$1" || echo "$2" >>"$1"
}

# mask_package ATOM...     never install ATOM (package.mask)
mask_package() {
  [ $# -ge 1 ] || bob_die "mask_package: usage: mask_package ATOM..."
  local a
  for a in "$@"; do _bob_add_unique "$_PORTAGE_ETC/package.mask/bob" "$a"; done
}

# unmask_package ATOM...   allow ATOM though the profile masks it (package.unmask)
unmask_package() {
  [ $# -ge 1 ] || bob_die "unmask_package: usage: unmask_package ATOM..."
  local a
  for a in "$@"; do _bob_add_unique "$_PORTAGE_ETC/package.unmask/bob" "$a"; done
}

# The "category/name-version" Portage's package.provided wants for ATOM: the
# atom itself when it has a version, else the best version Portage sees.
_bob_versioned() { # ATOM
  local a=${1#=}
  a=${a%%::*}
  if [[ $a =~ ^[A-Za-z0-9+_.-]+/[A-Za-z0-9+_-]+-[0-9][0-9.]*[a-z]?((_(alpha|beta|pre|rc|p)[0-9]*)*)(-r[0-9]+)?$ ]]; then
    echo "$a"
    return
  fi
  command -v portageq >/dev/null || bob_die "'$1' has no version and portageq is missing to find one: give cat/name-version"
  local best
  best=$(portageq best_visible / "$a" 2>/dev/null || true)
  [ -n "$best" ] || bob_die "no visible version of '$1' in the ebuild repository to provide"
  echo "${best%%::*}"
}

_bob_provided_file() { echo "$_PORTAGE_ETC/profile/package.provided"; }

# provide_package ATOM...   tell Portage ATOM is installed already (a parent
# image has it), so emerge skips it: adds cat/name-version to package.provided
provide_package() {
  [ $# -ge 1 ] || bob_die "provide_package: usage: provide_package ATOM..."
  local a v
  for a in "$@"; do
    v=$(_bob_versioned "$a") || exit 1
    _bob_add_unique "$(_bob_provided_file)" "$v"
  done
}

# unprovide_package ATOM...   the opposite: emerge installs ATOM again (all
# versions of its category/name), e.g. headers a child image needs
unprovide_package() {
  [ $# -ge 1 ] || bob_die "unprovide_package: usage: unprovide_package ATOM..."
  local file a cp
  file=$(_bob_provided_file)
  [ -f "$file" ] || return 0
  for a in "$@"; do
    cp=${a#[<>=~]}
    cp=${cp#=}
    cp=${cp%%::*}
    cp=${cp%%:*}
    # strip a version: the longest prefix that is category/name
    [[ $cp =~ ^([^/]+/.+)-[0-9] ]] && cp=${BASH_REMATCH[1]}
    awk -v cp="$cp" '{ n = $0; sub(/-[0-9].*$/, "", n); if (n != cp) print }' "$file" >"$file.new"
    mv "$file.new" "$file"
  done
}

# add_overlay NAME LOCATION|URL [SYNC_TYPE]   add an ebuild repository: a
# local directory is used in place; a URL is synced (git by default) to
# /var/db/repos/NAME with emaint
add_overlay() {
  [ $# -ge 2 ] || bob_die "add_overlay: usage: add_overlay NAME LOCATION|URL [git|rsync]"
  local name=$1 src=$2 type=${3:-git} conf="$_PORTAGE_ETC/repos.conf/$1.conf"
  mkdir -p "$_PORTAGE_ETC/repos.conf"
  if [ -d "$src" ]; then
    [ -f "$src/profiles/repo_name" ] || [ -f "$src/metadata/layout.conf" ] ||
      bob_die "add_overlay $name: $src is no ebuild repository (no profiles/repo_name or metadata/layout.conf)"
    printf '[%s]\nlocation = %s\nauto-sync = no\n' "$name" "$src" >"$conf"
    return
  fi
  printf '[%s]\nlocation = /var/db/repos/%s\nsync-type = %s\nsync-uri = %s\nauto-sync = yes\n' "$name" "$name" "$type" "$src" >"$conf"
  emaint sync --repo "$name" >&2 || bob_die "add_overlay $name: syncing $src failed"
}

# download_file URL [FILE_NAME]   fetch URL into DISTDIR once (kept across
# builds like Portage's distfiles); sets __download_file to its path and
# prints it. file:// URLs and plain paths are copied. In a kiln build
# container kiln fetches it (lib/fetch.py): the container has no network.
download_file() {
  [ $# -ge 1 ] || bob_die "download_file: usage: download_file URL [FILE_NAME]"
  local url=$1 dir=${DISTDIR:-/var/cache/distfiles} name
  name=${2:-$(basename "${url%%[?#]*}")}
  __download_file="$dir/$name"
  mkdir -p "$dir"
  if [ ! -s "$__download_file" ]; then
    case $url in
      file://*) cp "${url#file://}" "$__download_file.part" ;;
      /*) cp "$url" "$__download_file.part" ;;
      *)
        if [ -d /kiln/fetch ]; then
          # a kiln build container: no network, kiln downloads (lib/fetch.py)
          python3 "$_BOB_LIB/fetch.py" "$url" "$__download_file.part"
        elif command -v curl >/dev/null; then
          curl -fsSL --retry 3 -o "$__download_file.part" "$url"
        elif command -v wget >/dev/null; then
          wget -q -O "$__download_file.part" "$url"
        else
          false
        fi ;;
    esac || {
      rm -f "$__download_file.part"
      bob_die "download_file: could not fetch $url"
    }
    mv "$__download_file.part" "$__download_file"
  fi
  echo "$__download_file"
}

# copy_gcc_libs   copy gcc's runtime (libgcc_s, libstdc++) from the builder
# into the image, for C++ programs, without the whole of gcc
copy_gcc_libs() {
  local cc=${CC:-${CHOST:+$CHOST-}gcc} lib path dest="$_EMERGE_ROOT/usr/${_LIB:-lib}"
  command -v "$cc" >/dev/null || cc=gcc
  mkdir -p "$dest"
  for lib in libgcc_s.so.1 libstdc++.so.6; do
    path=$("$cc" -print-file-name="$lib")
    [ "$path" != "$lib" ] && [ -e "$path" ] || bob_die "copy_gcc_libs: $cc does not know $lib"
    cp -L "$path" "$dest/$lib"
  done
}

# uninstall_package ATOM...   remove ATOM from the image's root again (e.g.
# a build-time dependency the image does not need)
uninstall_package() {
  [ $# -ge 1 ] || bob_die "uninstall_package: usage: uninstall_package ATOM..."
  emerge --root="$_EMERGE_ROOT" --unmerge --quiet "$@" >&2 || bob_die "uninstall_package: emerge --unmerge $* failed"
}

# add_patch ATOM PATCH_FILE...   apply the patches when ATOM builds (Portage's
# /etc/portage/patches, applied by eapply_user)
add_patch() {
  [ $# -ge 2 ] || bob_die "add_patch: usage: add_patch ATOM PATCH_FILE..."
  local dir="$_PORTAGE_ETC/patches/${1#=}" p
  mkdir -p "$dir"
  shift
  for p in "$@"; do
    [ -f "$p" ] || bob_die "add_patch: no patch file $p"
    cp "$p" "$dir/"
  done
}

# log_as_installed WHAT NAME VERSION   note something installed outside
# Portage (e.g. a downloaded binary) so PACKAGES.md and the SBOM list it
log_as_installed() {
  [ $# -eq 3 ] || bob_die "log_as_installed: usage: log_as_installed WHAT NAME VERSION (e.g. 'manual install' go 1.22)"
  mkdir -p "${_BOB_STATE:-/var/lib/bob}"
  printf '%s\t%s\t%s\n' "$2" "$3" "$1" >>"${_BOB_STATE:-/var/lib/bob}/manual-installs"
}
