# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="skarnet.org's small and secure supervision software suite"
HOMEPAGE="https://skarnet.org/software/s6/"
SRC_URI="https://skarnet.org/software/${PN}/${P}.tar.gz"
LICENSE="ISC"
SLOT="0/$(ver_cut 1-2)"
KEYWORDS="amd64"
IUSE="+execline static-libs"

# execline: s6's programs that run execline scripts (s6-sudo, the run
# scripts' helpers) link libexecline.
RDEPEND="
	>=dev-libs/skalibs-2.13.1.1:=
	execline? ( >=dev-lang/execline-2.9.3.0:= )
"
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
		$(use_enable execline) \
		$(use_enable static-libs static) || die "s6's configure failed"
}

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}
