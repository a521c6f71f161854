# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Like Gentoo's acct-user packages, without the eclass: adds user kiln
# (uid 1234) to ROOT's /etc/passwd.
EAPI=8

DESCRIPTION="User for app-misc/owned"
S="${WORKDIR}"
SLOT="0"
KEYWORDS="amd64"

DEPEND="acct-group/kiln"
RDEPEND="acct-group/kiln"

pkg_preinst() {
	mkdir -p "${ROOT}/etc" || die
	touch "${ROOT}/etc/passwd" || die
	if ! grep -q '^kiln:' "${ROOT}/etc/passwd"; then
		echo "kiln:x:1234:1234:kiln test user:/var/lib/owned:/sbin/nologin" >>"${ROOT}/etc/passwd" || die
	fi
}
