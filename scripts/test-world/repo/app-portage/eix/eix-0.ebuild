# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# A stand-in that installs nothing: layouts/gentoo's builder lists the real
# eix as a tool for people working in the build container; kiln's own
# helpers (update_use, provide_package...) write /etc/portage themselves and
# never call it.
EAPI=8

DESCRIPTION="Search and query ebuilds (stand-in: installs nothing)"
HOMEPAGE="https://wiki.gentoo.org/wiki/Portage"
S="${WORKDIR}"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
