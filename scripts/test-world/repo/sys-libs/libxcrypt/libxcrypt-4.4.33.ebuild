# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Not built from source, like sys-libs/glibc here: installs the builder's own
# (Debian bookworm) libcrypt.so.1, which Debian builds from libxcrypt 4.4.33.
EAPI=8

DESCRIPTION="Extended crypt library for descrypt, md5crypt, bcrypt, and others"
HOMEPAGE="https://github.com/besser82/libxcrypt"
S="${WORKDIR}"
LICENSE="LGPL-2.1+"
SLOT="0/1"
KEYWORDS="amd64"
IUSE="static-libs"
RESTRICT="strip"

RDEPEND="sys-libs/glibc"

src_install() {
	local from="${BROOT%/}/usr/lib/x86_64-linux-gnu"
	exeinto /usr/lib/x86_64-linux-gnu
	newexe "$(realpath "${from}/libcrypt.so.1")" libcrypt.so.1
	if use static-libs; then
		insinto /usr/lib/x86_64-linux-gnu
		doins "${from}/libcrypt.a"
	fi
}
