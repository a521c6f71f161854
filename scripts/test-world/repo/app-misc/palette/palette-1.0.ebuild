# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# What it installs depends on its USE flags: red (default on), blue, doc.
EAPI=8

DESCRIPTION="Installs one file per enabled colour USE flag"
HOMEPAGE="https://kiln.invalid/palette"
S="${WORKDIR}"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
IUSE="+red blue doc"
REQUIRED_USE="|| ( red blue )"

src_install() {
	insinto /usr/share/palette
	local c
	for c in red blue; do
		if use "${c}"; then
			newins - "${c}" <<<"${c}"
		fi
	done
	if use doc; then
		newdoc - colours.txt <<<"palette installs: $(usev red) $(usev blue)"
	fi
}
