# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Like Gentoo's acct-group packages, without the eclass: adds group kiln
# (gid 1234) to ROOT's /etc/group.
EAPI=8

DESCRIPTION="Group for app-misc/owned"
S="${WORKDIR}"
SLOT="0"
KEYWORDS="amd64"

pkg_preinst() {
	mkdir -p "${ROOT}/etc" || die
	touch "${ROOT}/etc/group" || die
	if ! grep -q '^kiln:' "${ROOT}/etc/group"; then
		echo "kiln:x:1234:" >>"${ROOT}/etc/group" || die
	fi
}
