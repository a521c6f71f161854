# What build-root.sh writes after emerge: failure reports, package lists,
# PACKAGES.md, packages.json, and the slimming of the image's root.
# shellcheck shell=bash

# bob_emerge_failed LOG RC: name the package, the phase and the last lines of
# its build log (what a user needs to fix it), in failure.txt too; exit RC.
bob_emerge_failed() {
  local log=$1 rc=$2 line pkg="" phase="" buildlog=""
  line=$(grep -o 'ERROR: [^ ]* failed ([a-z_]* phase)' "$log" | tail -n1 || true)
  if [[ $line =~ ^ERROR:\ ([^ ]+)\ failed\ \(([a-z_]+)\ phase\) ]]; then
    pkg=${BASH_REMATCH[1]%%::*}
    phase=${BASH_REMATCH[2]}
    buildlog=$(grep -o "The complete build log is located at '[^']*'" "$log" | tail -n1 | cut -d"'" -f2 || true)
  fi
  {
    if [ -n "$pkg" ]; then
      echo "emerge failed: $pkg failed in its $phase phase"
      echo "package: $pkg"
      echo "phase: $phase"
      echo "log: ${buildlog:-unknown}"
      if [ -n "$buildlog" ] && [ -f "$buildlog" ]; then
        echo "last lines of the build log:"
        # Portage colours its messages even in build.log
        tail -n 20 "$buildlog" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  /'
      fi
    else
      echo "emerge failed (exit $rc) before building a package; its last lines:"
      tail -n 20 "$log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  /'
    fi
  } >"$_OUT/failure.txt"
  sed 's/^/bob: /' "$_OUT/failure.txt" >&2
  exit "$rc"
}

# The image's own packages, as "cat/name-version" lines, from its vdb.
_bob_vdb_list() {
  local d
  for d in "$_EMERGE_ROOT"/var/db/pkg/*/*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    echo "$(basename "$(dirname "$d")")/$(basename "$d")"
  done | sort
}

# "+flag -flag" for the flags a package declares (IUSE), as built (USE)
_bob_use_of() { # VDB_DIR
  local d=$1 f out=() use=" $(cat "$d/USE" 2>/dev/null) "
  for f in $(tr ' ' '\n' <"$d/IUSE" 2>/dev/null | sed 's/^[+-]//' | sort -u); do
    if [[ $use == *" $f "* ]]; then out+=("+$f"); else out+=("-$f"); fi
  done
  echo "${out[*]}"
}

bob_write_reports() {
  local own parent_count=0 d p size total=0
  own=$(_bob_vdb_list)
  printf '%s\n' "$own" | sed '/^$/d' >"$_OUT/package.image"
  { [ -f "$_PARENT_PACKAGES" ] && cat "$_PARENT_PACKAGES"; cat "$_OUT/package.image"; } | sed '/^$/d' | sort -u >"$_OUT/package.installed"
  [ -f "$_PARENT_PACKAGES" ] && parent_count=$(grep -c . "$_PARENT_PACKAGES" || true)
  {
    echo "# $_IMAGE"
    echo
    echo "Packages installed in this image's layer by kiln (bob-core), on top of"
    echo "$parent_count packages its parent images provide."
    echo
    echo "| Package | Version | Slot | USE | Size |"
    echo "|---|---|---|---|---|"
    for p in $own; do
      d="$_EMERGE_ROOT/var/db/pkg/$p"
      size=$(cat "$d/SIZE" 2>/dev/null || echo 0)
      total=$((total + size))
      [[ $(cat "$d/PF") =~ ^(.+)-([0-9][^-]*(-r[0-9]+)?)$ ]] || continue
      printf '| %s | %s | %s | %s | %s |\n' "$(cat "$d/CATEGORY")/${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
        "$(cat "$d/SLOT" 2>/dev/null)" "$(_bob_use_of "$d")" "$(numfmt --to=iec-i --suffix=B "$size")"
    done
    if [ -f "$_BOB_STATE/manual-installs" ]; then
      while IFS=$'\t' read -r name version what; do
        printf '| %s | %s | | %s | |\n' "$name" "$version" "$what"
      done <"$_BOB_STATE/manual-installs"
    fi
    echo
    echo "Total before slimming: $(numfmt --to=iec-i --suffix=B "$total")"
  } >"$_OUT/PACKAGES.md"
  # What Portage knows of each package, for kiln's SBOMs (src/sbom/): the
  # vdb's keys, the distfiles the build used (A, from its environment) with
  # their size and SHA512 from the ebuild repository's Manifest; and the
  # make.conf and package.* files in force, for the provenance.
  python3 - "$_EMERGE_ROOT/var/db/pkg" "$_OUT/packages.json" "$_PORTAGE_ETC" <<'PY'
import bz2, json, os, re, shlex, sys
vdb, out, etc = sys.argv[1], sys.argv[2], sys.argv[3]
def settings():
    found = {}
    for top in sorted(os.listdir(etc)) if os.path.isdir(etc) else []:
        if top != "make.conf" and not top.startswith("package."):
            continue
        path = os.path.join(etc, top)
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        for f in files:
            with open(f, encoding="utf-8", errors="replace") as fh:
                found[os.path.relpath(f, etc)] = fh.read()
    return found
def read(d, name):
    try:
        with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
def env_var(d, name):
    try:
        with bz2.open(os.path.join(d, "environment.bz2"), "rt", errors="replace") as f:
            for line in f:
                m = re.match(r"declare -[-a-zA-Z]* %s=(.*)$" % name, line)
                if m:
                    return " ".join(shlex.split(m.group(1)))
    except (FileNotFoundError, ValueError):
        pass
    return ""
def repo_dir(name):
    try:
        import portage
        return portage.settings.repositories[name].location
    except Exception:
        return os.path.join("/var/db/repos", name)
def manifest(repo, cat, pn):
    dist = {}
    try:
        with open(os.path.join(repo_dir(repo), cat, pn, "Manifest"), encoding="utf-8") as f:
            for line in f:
                p = line.split()
                if len(p) >= 3 and p[0] == "DIST":
                    sums = dict(zip(p[3::2], p[4::2]))
                    dist[p[1]] = {"name": p[1], "size": int(p[2]), "sha512": sums.get("SHA512", "")}
    except FileNotFoundError:
        pass
    return dist
pkgs = []
for cat in sorted(os.listdir(vdb)) if os.path.isdir(vdb) else []:
    for pf in sorted(os.listdir(os.path.join(vdb, cat))):
        d = os.path.join(vdb, cat, pf)
        use = set(read(d, "USE").split())
        iuse = sorted({f.lstrip("+-") for f in read(d, "IUSE").split()})
        m = re.match(r"^(.+)-([0-9][^-]*(-r[0-9]+)?)$", pf)
        pn, pvr = (m.group(1), m.group(2)) if m else (pf, "")
        repo = read(d, "repository")
        known = manifest(repo, cat, pn)
        distfiles = [known.get(a, {"name": a, "size": 0, "sha512": ""}) for a in sorted(set(env_var(d, "A").split()))]
        pkgs.append({
            "category": cat, "pf": pf, "pn": pn, "pvr": pvr,
            "slot": read(d, "SLOT"),
            "use": sorted(f for f in iuse if f in use),
            "use_disabled": sorted(f for f in iuse if f not in use),
            "license": read(d, "LICENSE"),
            "homepage": read(d, "HOMEPAGE"),
            "description": read(d, "DESCRIPTION"),
            "repository": repo,
            "size": int(read(d, "SIZE") or 0),
            "chost": read(d, "CHOST"), "cflags": read(d, "CFLAGS"),
            "distfiles": distfiles,
        })
with open(out, "w", encoding="utf-8") as f:
    json.dump({"packages": pkgs, "portage": settings()}, f, indent=1, sort_keys=True)
    f.write("\n")
PY
}

# bob_slim ROOT: remove what a runtime image does not need, unless the
# image's build.sh (or KILN_KEEP) keeps it; KILN_KEEP_PATHS always stay.
bob_slim() {
  local root=$1 before after removed=() l keep p saved kept=()
  before=$(du -sk "$root" | cut -f1)
  # KILN_KEEP_PATHS (image.toml's `keep`, one absolute path per line) stay
  # whatever is removed below: saved first, put back last.
  saved=$(mktemp -d)
  while IFS= read -r p; do
    [ -n "$p" ] || continue
    [[ $p == /* ]] || bob_die "KILN_KEEP_PATHS: '$p' is not an absolute path"
    if [ -e "$root$p" ] || [ -L "$root$p" ]; then
      kept+=(".$p")
    else
      bob_msg "warning: keep: $p is not in the image's root"
    fi
  done <<<"${KILN_KEEP_PATHS:-}"
  [ ${#kept[@]} -eq 0 ] || tar -C "$root" -cf "$saved/kept.tar" "${kept[@]}"
  if [ "$_keep_headers" != true ]; then
    rm -rf "$root"/usr/include "$root"/usr/lib*/pkgconfig "$root"/usr/share/pkgconfig
    removed+=(headers)
  fi
  if [ "$_keep_static_libs" != true ]; then
    find "$root" -xdev \( -name '*.a' -o -name '*.la' \) \( -type f -o -type l \) -delete
    removed+=("static libs")
  fi
  if [ "$_keep_docs" != true ]; then
    rm -rf "$root"/usr/share/doc "$root"/usr/share/gtk-doc
    removed+=(docs)
  fi
  if [ "$_keep_man" != true ]; then
    rm -rf "$root"/usr/share/man
    removed+=(man)
  fi
  if [ "$_keep_info" != true ]; then
    rm -rf "$root"/usr/share/info
    removed+=(info)
  fi
  if [ "$_keep_locales" != true ] && [ -d "$root/usr/share/locale" ]; then
    for l in "$root"/usr/share/locale/*; do
      keep=false
      for k in $_keep_locales; do
        [ "$k" != false ] && [ "$(basename "$l")" = "$k" ] && keep=true
      done
      [ "$(basename "$l")" = locale.alias ] && keep=true
      [ "$keep" = true ] || rm -rf "$l"
    done
    removed+=("locales${_keep_locales:+ but ${_keep_locales}}")
  fi
  if [ "$_keep_vdb" != true ]; then
    # Portage's database of the root: volatile (BUILD_TIME, COUNTER), and
    # its content is in package.installed and packages.json
    rm -rf "$root"/var/db/pkg "$root"/var/cache/edb "$root"/var/lib/portage
    removed+=("package database")
  else
    # Kept: only its read cache goes. Each package's `metadata` records its
    # directory's mtime in ns (different on every build) and Portage ignores
    # it once the image's clamped mtimes no longer match it. mtimedb holds
    # emerge's resume list and the config files' mtimes of this build.
    rm -f "$root"/var/db/pkg/*/*/metadata "$root"/var/cache/edb/mtimedb
  fi
  find "$root/usr" "$root/var" -xdev -mindepth 1 -type d -empty -delete 2>/dev/null || true
  if [ ${#kept[@]} -gt 0 ]; then
    tar -C "$root" -xpf "$saved/kept.tar"
    removed+=("(kept ${#kept[@]} path(s) of keep)")
  fi
  rm -rf "$saved"
  after=$(du -sk "$root" | cut -f1)
  bob_msg "slimmed: ${removed[*]:-nothing} removed ($((before - after)) KiB)"
}
