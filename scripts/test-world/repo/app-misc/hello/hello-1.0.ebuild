# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="A C program built from a tarball: says hello"
HOMEPAGE="https://kiln.invalid/hello"
SRC_URI="https://kiln.invalid/distfiles/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

RDEPEND="virtual/libc"

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
	doman hello.1
	dodoc README
}
