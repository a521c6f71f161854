# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="Prints a greeting by running app-misc/hello (a runtime dependency)"
HOMEPAGE="https://kiln.invalid/greeting"
SRC_URI="https://kiln.invalid/distfiles/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

RDEPEND="app-misc/hello"

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
}
