# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Not built from source: installs the builder's own (Debian bookworm) glibc
# runtime, so that a root emerged with --root runs programs on its own.
# libcrypt.so.1 is sys-libs/libxcrypt's, as on Gentoo.
EAPI=8

DESCRIPTION="The GNU C library (runtime files copied from the Debian builder)"
HOMEPAGE="https://www.gnu.org/software/libc/"
S="${WORKDIR}"
LICENSE="LGPL-2.1+"
SLOT="2.2"
KEYWORDS="amd64"
RESTRICT="strip"

GLIBC_LIBS=(
	libc.so.6 libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1
	libresolv.so.2 libutil.so.1 libanl.so.1 libnss_files.so.2 libnss_dns.so.2
	libnss_compat.so.2
)

src_install() {
	local from="${BROOT%/}/usr/lib/x86_64-linux-gnu" lib
	exeinto /usr/lib/x86_64-linux-gnu
	for lib in "${GLIBC_LIBS[@]}"; do
		newexe "$(realpath "${from}/${lib}")" "${lib}"
	done
	exeinto /lib64
	newexe "$(realpath "${from}/ld-linux-x86-64.so.2")" ld-linux-x86-64.so.2
	insinto /etc
	newins - nsswitch.conf <<-NSS
		passwd: files
		group: files
		shadow: files
		hosts: files dns
	NSS
}
