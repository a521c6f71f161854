# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Built from the real zlib 1.2.13 release (Debian's "dfsg" repack of it,
# which leaves out contrib/ files of unclear licence; the library is whole).
EAPI=8

DESCRIPTION="Standard (de)compression library"
HOMEPAGE="https://zlib.net/"
SRC_URI="https://kiln.invalid/distfiles/${P}.dfsg.tar.bz2"
S="${WORKDIR}/${P}.dfsg"
LICENSE="ZLIB"
SLOT="0/1"
KEYWORDS="amd64"
IUSE="static-libs"

RDEPEND="virtual/libc"

src_configure() {
	# zlib's configure is its own script, not autoconf's: econf's options
	# would make it fail.
	CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}" ./configure \
		--prefix="${EPREFIX}/usr" --libdir="${EPREFIX}/usr/$(get_libdir)" \
		--shared || die "zlib's configure failed"
}

src_install() {
	emake DESTDIR="${D}" install
	use static-libs || rm -f "${ED}/usr/$(get_libdir)/libz.a" || die
	rm -rf "${ED}/usr/share/man" || die
	dodoc ChangeLog README
}
