# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Slotted: libfoo:1 and libfoo:2 install side by side.
EAPI=8

DESCRIPTION="A slotted shared library (slot ${SLOT})"
HOMEPAGE="https://kiln.invalid/libfoo"
SRC_URI="https://kiln.invalid/distfiles/${P}.tar.gz"
LICENSE="MIT"
SLOT="1"
KEYWORDS="amd64"

RDEPEND="virtual/libc"

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" LIBDIR="$(get_libdir)" install
}
