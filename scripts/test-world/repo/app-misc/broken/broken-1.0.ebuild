# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# A fixture whose build fails in src_compile, for error reporting tests.
EAPI=8

DESCRIPTION="A package whose build always fails"
HOMEPAGE="https://kiln.invalid/broken"
SRC_URI="https://kiln.invalid/distfiles/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

src_compile() {
	emake CC="${CHOST}-gcc" CFLAGS="${CFLAGS}"
}
