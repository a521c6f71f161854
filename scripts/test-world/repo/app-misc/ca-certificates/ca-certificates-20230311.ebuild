# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Not built from source: the builder's own (Debian bookworm) Mozilla CA
# bundle, the one file TLS clients read.
EAPI=8

DESCRIPTION="Common CA certificates (the Debian builder's bundle)"
HOMEPAGE="https://packages.debian.org/bookworm/ca-certificates"
S="${WORKDIR}"
LICENSE="MPL-2.0"
SLOT="0"
KEYWORDS="amd64"

src_install() {
	insinto /etc/ssl/certs
	doins "${BROOT%/}/etc/ssl/certs/ca-certificates.crt"
}
