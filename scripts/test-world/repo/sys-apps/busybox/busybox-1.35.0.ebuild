# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="Utilities for rescue and embedded systems in one binary"
HOMEPAGE="https://www.busybox.net/"
SRC_URI="https://www.busybox.net/downloads/${P}.tar.bz2"
LICENSE="GPL-2"
SLOT="0"
KEYWORDS="amd64"
IUSE="make-symlinks static"

# A static busybox needs nothing at run time, but the static C library
# (libc.a, libcrypt.a: the builder's) to link; a dynamic one needs libc and
# libcrypt at run time.
RDEPEND="!static? ( virtual/libc sys-libs/libxcrypt:= )"
DEPEND="virtual/libc"

# busybox_config NAME y|n: set CONFIG_NAME in .config
busybox_config() {
	local name="CONFIG_$1"
	sed -i -e "/^${name}=/d" -e "/^# ${name} is not set/d" .config || die
	if [[ $2 == y ]]; then
		echo "${name}=y" >>.config || die
	else
		echo "# ${name} is not set" >>.config || die
	fi
}

src_configure() {
	emake -j1 HOSTCC="${BUILD_CHOST:-${CHOST}}-gcc" defconfig >/dev/null
	busybox_config STATIC "$(usex static y n)"
	# Applets that need what a container does not have or want
	busybox_config FEATURE_SUID_CONFIG n
	busybox_config PAM n
	busybox_config SELINUX n
	busybox_config WERROR n
	yes "" | emake -j1 HOSTCC="${BUILD_CHOST:-${CHOST}}-gcc" oldconfig >/dev/null
}

src_compile() {
	emake CC="${CHOST}-gcc" HOSTCC="${BUILD_CHOST:-${CHOST}}-gcc" \
		EXTRA_CFLAGS="${CFLAGS}" EXTRA_LDFLAGS="${LDFLAGS}" SKIP_STRIP=y V=0 busybox
}

src_install() {
	into /
	dobin busybox
	if use make-symlinks; then
		# Every applet as a link to /bin/busybox, where busybox's own
		# install would put it (sbin, usr/bin... relative links).
		emake CC="${CHOST}-gcc" CONFIG_PREFIX="${ED}" SKIP_STRIP=y install >/dev/null
		rm -f "${ED}"/linuxrc || die
	fi
	dodoc AUTHORS README
}
