# The image's account files (etc/passwd, group, shadow, gshadow) across the
# layers of a stack. Gentoo's acct-user and acct-group packages add their
# users with shadow's `useradd`/`groupadd --prefix /emerge-root`, which edit
# the files in place and fail when they are missing. An image's layer
# replaces its parent's files as a whole in the merged root, so a child's
# copy must start as its parent's: then it holds every user of the layers
# below and its own. Sourced by build-root.sh; the unit tests source it alone.
#   _EMERGE_ROOT       the image's root
#   _PARENT_ACCOUNTS   the parent image's files as its layers merge them
#                      (kiln reads them from the layout), or no such dir for
#                      an image with no parent
#   _PARENT_PACKAGES   the parent's package list: there is a parent
#   _BASELAYOUT        where a Gentoo builder's baselayout keeps its templates
# shellcheck shell=bash

_BOB_ACCOUNT_FILES="passwd group shadow gshadow"
_PARENT_ACCOUNTS=${_PARENT_ACCOUNTS:-/kiln/parent-accounts}
_BASELAYOUT=${_BASELAYOUT:-/usr/share/baselayout}

# bob_seed_accounts: the files the build starts from, into
# $_EMERGE_ROOT/etc. With a parent: its files, byte for byte, with their
# modes. Without one (or for a file the parent lacks): what Gentoo's
# baselayout would copy into an empty root (passwd, group, shadow from its
# templates in the builder), else root and nobody only. A file the root has
# already is left alone.
bob_seed_accounts() {
  local etc="$_EMERGE_ROOT/etc" f seeded=()
  if [ -f "${_PARENT_PACKAGES:-}" ] && [ ! -d "$_PARENT_ACCOUNTS" ]; then
    # A parent, but not its files: anything seeded here would hide the
    # parent's users in the merged image.
    bob_msg "accounts: the parent image's files are not at $_PARENT_ACCOUNTS: none seeded"
    return
  fi
  [ -d "$etc" ] || install -d -m 0755 "$etc"
  for f in $_BOB_ACCOUNT_FILES; do
    [ -e "$etc/$f" ] && continue
    if [ -f "$_PARENT_ACCOUNTS/$f" ]; then
      cp -p "$_PARENT_ACCOUNTS/$f" "$etc/$f"
      seeded+=("$f (parent)")
    elif [ -f "$_BASELAYOUT/$f" ]; then
      cp -p "$_BASELAYOUT/$f" "$etc/$f"
      seeded+=("$f (baselayout)")
    elif [ "$f" != gshadow ]; then
      _bob_minimal_account_file "$f" "$etc/$f"
      seeded+=("$f (root, nobody)")
    fi
  done
  # baselayout leaves shadow world-unreadable; so does kiln
  [ ! -f "$etc/shadow" ] || chmod o-rwx "$etc/shadow"
  bob_msg "accounts: ${seeded[*]:-none seeded}"
}

# The smallest files useradd/groupadd can work on: root and nobody, with the
# ids and homes Gentoo's baselayout gives them, passwords locked.
_bob_minimal_account_file() { # NAME PATH
  case $1 in
    passwd) printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/var/empty:/sbin/nologin' >"$2" ;;
    group) printf '%s\n' 'root:x:0:root' 'nobody:x:65534:' >"$2" ;;
    shadow)
      printf '%s\n' 'root:*::0:::::' 'nobody:*::0:::::' >"$2"
      chmod 0600 "$2"
      return ;;
  esac
  chmod 0644 "$2"
}

# bob_prune_accounts: after the build, what the layer need not
# carry: shadow's backups (passwd-, group-, shadow-, gshadow-: the previous
# state, stale in an image) and the files still byte-identical to the
# parent's (the parent's layer already has them). etc/ goes too if that
# leaves it empty.
bob_prune_accounts() {
  local etc="$_EMERGE_ROOT/etc" f same=()
  for f in $_BOB_ACCOUNT_FILES; do
    rm -f "$etc/$f-"
    if [ -f "$_PARENT_ACCOUNTS/$f" ] && [ -f "$etc/$f" ] && cmp -s "$_PARENT_ACCOUNTS/$f" "$etc/$f"; then
      rm -f "$etc/$f"
      same+=("$f")
    fi
  done
  rmdir "$etc" 2>/dev/null || true
  bob_msg "accounts: ${same[*]:-no file} as the parent's, left to its layer"
}
