#!/usr/bin/env bash
# bob-core's build-root.sh: runs inside every kiln build container and makes
# one image's root file system in /emerge-root, the way gentoo-bb and kubler
# do. The contract with kiln (mounts, variables, output files) is in
# bob-core/README.md. Steps:
#  1. source /config/build.sh (the image's packages, keep options, hooks)
#  2. configure_builder (or gentoo-bb's configure_bob) hook, then a
#     builder's own packages (KILN_BUILDER_PACKAGES) emerged into /
#  3. package.provided <- the parent image's installed package list
#  4. the root's etc/passwd, group, shadow, gshadow <- the parent image's
#     (lib/accounts.sh), so that acct-user packages add to them
#  5. configure_rootfs_build hook
#  6. emerge the packages' build dependencies into / and then the
#     packages into /emerge-root, making and reusing binpkgs
#  7. finish_rootfs_build hook
#  8. package lists, PACKAGES.md and packages.json into $KILN_OUT
#  9. slim the root (headers, static libs, docs, man, info, locales, vdb),
#     drop the account files the parent's layer has as they are
# With KILN_FETCH_ONLY=1 (kiln fetch) it stops after step 5 and only
# downloads the distfiles step 6 would need.
set -eEuo pipefail
# Portage drops to the portage user to unpack and compile: under the caller's
# umask 077 it could not read the files root made for it.
umask 022

_BOB_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
_CONFIG=${KILN_CONFIG:-/config}
_EMERGE_ROOT=${KILN_EMERGE_ROOT:-/emerge-root}
_OUT=${KILN_OUT:-/kiln/out}
_PARENT_PACKAGES=${KILN_PARENT_PACKAGES:-/kiln/parent/package.installed}
_PARENT_ACCOUNTS=${KILN_PARENT_ACCOUNTS:-/kiln/parent-accounts}
_IMAGE=${KILN_IMAGE:-$(basename "$_CONFIG")}
KILN_KEEP=${KILN_KEEP:-}
_BOB_STATE=$_OUT
# shellcheck source=lib/helpers.sh
. "$_BOB_DIR/lib/helpers.sh"
# shellcheck source=lib/report.sh
. "$_BOB_DIR/lib/report.sh"
# shellcheck source=lib/accounts.sh
. "$_BOB_DIR/lib/accounts.sh"
# A kiln build container has no network: Portage's downloads go through
# kiln's download service, whose socket kiln mounts in /kiln/fetch.
if [ -d /kiln/fetch ]; then
  export FETCHCOMMAND="python3 $_BOB_DIR/lib/fetch.py \"\${URI}\" \"\${DISTDIR}/\${FILE}\""
  export RESUMECOMMAND=$FETCHCOMMAND
fi

_bob_step="starting"
trap 'rc=$?; bob_msg "error: $_bob_step failed (exit $rc)"; exit $rc' ERR
step() {
  _bob_step=$1
  bob_msg "== $1"
}

[ -f "$_CONFIG/build.sh" ] || bob_die "no build.sh in $_CONFIG (kiln mounts the image's directory there)"
mkdir -p "$_OUT" "$_EMERGE_ROOT"
rm -f "$_OUT/failure.txt"

# What build.sh may set (kubler's names; gentoo-bb's PACKAGES works too)
_packages="" PACKAGES="" _emerge_bin=emerge _emerge_opt=""
_keep_headers=false _keep_static_libs=false _keep_docs=false _keep_man=false
_keep_info=false _keep_locales=false _keep_vdb=false
# Two portageq runs cost half a second; the answer is kept in the build
# container, so the builder states after the first build already have it.
_LIB=$(cat /var/lib/kiln/libdir 2>/dev/null || true)
if [ -z "$_LIB" ]; then
  _LIB=$(portageq envvar "LIBDIR_$(portageq envvar ABI 2>/dev/null)" 2>/dev/null || true)
  _LIB=${_LIB:-lib}
  { mkdir -p /var/lib/kiln && echo "$_LIB" >/var/lib/kiln/libdir; } 2>/dev/null || true
fi
export _EMERGE_ROOT _CONFIG _LIB

step "sourcing $_CONFIG/build.sh"
# shellcheck disable=SC1091
. "$_CONFIG/build.sh"
# kiln's image.toml settings win over build.sh's (comma or space separated)
for k in ${KILN_KEEP//,/ }; do
  case $k in
    headers | static-libs | docs | man | info | vdb) declare "_keep_${k//-/_}=true" ;;
    locales) _keep_locales=true ;;
    locales=*) _keep_locales=${k#locales=} ;;
    *) bob_die "KILN_KEEP: unknown '$k' (headers, static-libs, docs, man, info, locales, locales=de:fr, vdb)" ;;
  esac
done
_keep_locales=${_keep_locales//:/ }
packages="${_packages:-$PACKAGES} ${KILN_PACKAGES:-}"

if declare -F configure_builder >/dev/null; then
  step "configure_builder (build.sh)"
  configure_builder
elif declare -F configure_bob >/dev/null; then
  step "configure_bob (build.sh)"
  configure_bob
fi

read -r -a builder_pkgs <<<"${KILN_BUILDER_PACKAGES:-}"
if [ ${#builder_pkgs[@]} -gt 0 ]; then
  # A builder's own packages (builder.toml), installed into the builder
  # itself: the build tools the images built in it need.
  if [ "${KILN_FETCH_ONLY:-}" = 1 ]; then
    step "emerge --fetchonly ${builder_pkgs[*]} (builder)"
    "$_emerge_bin" --fetchonly --color=n --verbose "${builder_pkgs[@]}" 2>&1 | tee "$_OUT/emerge.log"
  else
    step "emerge ${builder_pkgs[*]} into the builder"
    rc=0
    "$_emerge_bin" --buildpkg --usepkg --binpkg-respect-use=y --binpkg-changed-deps=n \
      --color=n --verbose --noreplace --jobs="${KILN_JOBS:-1}" "${builder_pkgs[@]}" 2>&1 |
      tee "$_OUT/emerge.log" || rc=$?
    [ "$rc" -eq 0 ] || bob_emerge_failed "$_OUT/emerge.log" "$rc"
  fi
fi

step "package.provided from the parent image"
if [ -f "$_PARENT_PACKAGES" ]; then
  while read -r p; do
    [ -n "$p" ] && _bob_add_unique "$(_bob_provided_file)" "$p"
  done <"$_PARENT_PACKAGES"
  bob_msg "$(grep -c . "$_PARENT_PACKAGES" || true) packages provided by the parent image"
fi

step "accounts: etc/passwd, group, shadow, gshadow"
bob_seed_accounts

if declare -F configure_rootfs_build >/dev/null; then
  step "configure_rootfs_build (build.sh)"
  configure_rootfs_build
fi

read -r -a pkgs <<<"$packages"
if [ "${KILN_FETCH_ONLY:-}" = 1 ]; then
  # kiln fetch: the distfiles of everything the build would emerge into the
  # empty root (parents' packages too, as nothing is provided), and of build
  # dependencies the builder lacks; nothing is built or written to the root.
  step "emerge --fetchonly ${pkgs[*]}"
  [ ${#pkgs[@]} -eq 0 ] || "$_emerge_bin" --root="$_EMERGE_ROOT" --fetchonly --color=n \
    --verbose "${pkgs[@]}" 2>&1 | tee "$_OUT/emerge.log"
  bob_msg "fetched: $_IMAGE"
  exit 0
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  # Portage plans a library that is both a build dependency (DEPEND, for
  # the builder: SYSROOT is /) and a runtime one (RDEPEND, for the root) as
  # two merges, and with no binpkg yet it compiles it twice. Emerging the
  # build dependencies into the builder first, making binpkgs, lets the
  # root's emerge install those: each library is compiled once. Where the
  # builder has them already, or a binpkg of the package itself will be
  # used (then its build dependencies are not needed), this merges nothing.
  step "emerge the build dependencies of ${pkgs[*]} into the builder"
  rc=0
  # shellcheck disable=SC2086 # _emerge_opt is a word list, as in kubler
  "$_emerge_bin" --onlydeps --onlydeps-with-rdeps=n --buildpkg --usepkg \
    --binpkg-respect-use=y --binpkg-changed-deps=n --color=n --verbose \
    --jobs="${KILN_JOBS:-1}" $_emerge_opt "${pkgs[@]}" 2>&1 |
    tee "$_OUT/emerge.log" || rc=$?
  [ "$rc" -eq 0 ] || bob_emerge_failed "$_OUT/emerge.log" "$rc"

  step "emerge ${pkgs[*]}"
  # shellcheck disable=SC2086
  "$_emerge_bin" --root="$_EMERGE_ROOT" --buildpkg --usepkg --binpkg-respect-use=y \
    --binpkg-changed-deps=n --color=n --verbose --jobs="${KILN_JOBS:-1}" \
    $_emerge_opt "${pkgs[@]}" 2>&1 | tee -a "$_OUT/emerge.log" || rc=$?
  [ "$rc" -eq 0 ] || bob_emerge_failed "$_OUT/emerge.log" "$rc"
fi

if declare -F finish_rootfs_build >/dev/null; then
  step "finish_rootfs_build (build.sh)"
  finish_rootfs_build
fi

step "package lists, PACKAGES.md, packages.json"
bob_write_reports

step "slimming $_EMERGE_ROOT"
bob_slim "$_EMERGE_ROOT"
bob_prune_accounts
bob_msg "done: $_IMAGE ($(du -sh "$_EMERGE_ROOT" | cut -f1))"
