# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="A non-interactive scripting language (s6's run scripts use it)"
HOMEPAGE="https://skarnet.org/software/execline/"
SRC_URI="https://skarnet.org/software/${PN}/${P}.tar.gz"
LICENSE="ISC"
SLOT="0/$(ver_cut 1-2)"
KEYWORDS="amd64"
IUSE="static-libs"

# Links libskarnet: headers to build, the library to run; a new skalibs
# ABI (its subslot) needs a rebuild.
RDEPEND=">=dev-libs/skalibs-2.13.1.1:="
DEPEND="${RDEPEND}"

src_configure() {
	./configure \
		--prefix="${EPREFIX}/usr" \
		--bindir="${EPREFIX}/bin" \
		--libdir="${EPREFIX}/usr/$(get_libdir)" \
		--dynlibdir="${EPREFIX}/usr/$(get_libdir)" \
		--with-sysdeps="${ESYSROOT}/usr/$(get_libdir)/skalibs/sysdeps" \
		--with-include="${ESYSROOT}/usr/include" \
		--with-lib="${ESYSROOT}/usr/$(get_libdir)" \
		--with-dynlib="${ESYSROOT}/usr/$(get_libdir)" \
		--enable-shared \
		--disable-allstatic \
		$(use_enable static-libs static) || die "execline's configure failed"
}

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}
