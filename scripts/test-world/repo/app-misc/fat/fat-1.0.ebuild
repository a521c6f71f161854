# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Fodder for slimming: a program plus headers, a static library, a libtool
# archive, pkg-config data, docs, man and info pages and locale files.
EAPI=8

DESCRIPTION="A program that installs everything an image slims away"
HOMEPAGE="https://kiln.invalid/fat"
SRC_URI="https://kiln.invalid/distfiles/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

RDEPEND="virtual/libc"

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" LIBDIR="$(get_libdir)" install
	doman fat.1 fat_answer.3
	dodoc README NEWS
}
