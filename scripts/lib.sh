# Shared by scripts/demo and scripts/test: install what is missing, quietly
# and only once. Works as root and as a normal user with sudo.

# Debian packages kiln's demo and tests need (see docs/testing.md for why each).
KILN_APT_PACKAGES=(
  # the OCI consumers the tests check kiln's layouts with
  skopeo podman runc umoci oci-image-tool docker-registry
  golang-github-opencontainers-image-spec-dev python3-jsonschema
  # the SBOM validators' venv (scripts/test-setup)
  python3-venv
  # rootless containers
  uidmap fuse-overlayfs
  # the demo's busybox root, the benchmarks' baselines, graph rendering
  busybox-static pigz zstd xz-utils time graphviz
  # shells whose completion scripts the tests load
  zsh fish
  # the stand-in stage3 and its signed mirror
  debootstrap gnupg python3 python3-pip curl ca-certificates
)

say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }
die() { printf '\033[1;31merror\033[0m: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_apt_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say Installing "${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
}

# The podman configuration that works on hosts with hybrid cgroups and no
# systemd (docs/testing.md); tests and the demo point CONTAINERS_CONF at it.
write_containers_conf() {
  mkdir -p "$(dirname "$1")"
  cat >"$1" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}
