# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# The library under all of skarnet's software (execline, s6). Its configure
# is skarnet's own: options named like autoconf's, but not autoconf.
EAPI=8

DESCRIPTION="General-purpose C library of skarnet.org software"
HOMEPAGE="https://skarnet.org/software/skalibs/"
SRC_URI="https://skarnet.org/software/${PN}/${P}.tar.gz"
LICENSE="ISC"
SLOT="0/$(ver_cut 1-2)"
KEYWORDS="amd64"
IUSE="static-libs"

RDEPEND="virtual/libc"

src_configure() {
	./configure \
		--prefix="${EPREFIX}/usr" \
		--libdir="${EPREFIX}/usr/$(get_libdir)" \
		--dynlibdir="${EPREFIX}/usr/$(get_libdir)" \
		--sysdepdir="${EPREFIX}/usr/$(get_libdir)/skalibs/sysdeps" \
		--enable-shared \
		$(use_enable static-libs static) || die "skalibs' configure failed"
}

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}
