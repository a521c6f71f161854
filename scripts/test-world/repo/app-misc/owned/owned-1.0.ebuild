# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Installs a file owned by the user acct-user/kiln creates. DEPEND puts the
# user into the builder too, where fowners resolves the name (as in Gentoo).
EAPI=8

DESCRIPTION="Installs data owned by user kiln"
S="${WORKDIR}"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

DEPEND="acct-user/kiln"
RDEPEND="acct-user/kiln"

src_install() {
	insinto /var/lib/owned
	newins - data <<<"owned by kiln"
	fowners kiln:kiln /var/lib/owned /var/lib/owned/data
	fperms 0750 /var/lib/owned
	keepdir /var/lib/owned
}
