# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="Run arbitrary commands when files change"
HOMEPAGE="https://eradman.com/entrproject/"
SRC_URI="https://eradman.com/entrproject/code/${P}.tar.gz"
LICENSE="ISC"
SLOT="0"
KEYWORDS="amd64"

RDEPEND="virtual/libc"

src_configure() {
	# entr's configure only picks the Makefile for the system
	./configure || die "entr's configure failed"
}

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
	dodoc NEWS README.md
}
