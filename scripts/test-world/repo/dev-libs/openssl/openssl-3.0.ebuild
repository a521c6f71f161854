# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Not built from source (README: no OpenSSL): like sys-libs/glibc here, it
# installs the builder's own (Debian bookworm) OpenSSL 3.0 runtime, the
# libraries and the openssl program, so that images above gentoo/openssl
# run. No headers: nothing in the world can be built against it.
EAPI=8

DESCRIPTION="OpenSSL 3.0 runtime (copied from the Debian builder; no headers)"
HOMEPAGE="https://www.openssl.org/"
S="${WORKDIR}"
LICENSE="Apache-2.0"
SLOT="0/3"
KEYWORDS="amd64"
RESTRICT="strip"

RDEPEND="virtual/libc"

src_install() {
	local from="${BROOT%/}/usr/lib/x86_64-linux-gnu" lib
	exeinto /usr/lib/x86_64-linux-gnu
	for lib in libssl.so.3 libcrypto.so.3; do
		newexe "$(realpath "${from}/${lib}")" "${lib}"
	done
	exeinto /usr/bin
	doexe "${BROOT%/}/usr/bin/openssl"
	insinto /etc/ssl
	doins "${BROOT%/}/etc/ssl/openssl.cnf"
}
