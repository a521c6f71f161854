# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

MY_P="pcre2-${PV}"
DESCRIPTION="Perl-compatible regular expression library, version 2"
HOMEPAGE="https://github.com/PCRE2Project/pcre2"
SRC_URI="https://github.com/PCRE2Project/pcre2/releases/download/${MY_P}/${MY_P}.tar.gz"
S="${WORKDIR}/${MY_P}"
LICENSE="BSD"
SLOT="0/3"
KEYWORDS="amd64"
IUSE="+jit static-libs zlib"

# pcre2grep reads gzip files with USE=zlib: the library at run time, its
# header at build time.
RDEPEND="
	virtual/libc
	zlib? ( sys-libs/zlib:= )
"
DEPEND="${RDEPEND}"

src_configure() {
	econf \
		$(use_enable jit) \
		$(use_enable static-libs static) \
		$(use_enable zlib pcre2grep-libz) \
		--enable-shared \
		--enable-pcre2-16 \
		--enable-unicode \
		--disable-pcre2grep-libbz2
}

src_install() {
	default
	find "${ED}" -name '*.la' -delete || die
}
