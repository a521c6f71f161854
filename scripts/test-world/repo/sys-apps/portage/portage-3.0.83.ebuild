# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# A stand-in that installs nothing: the stand-in stage3 runs Portage from
# PyPI (/opt/portage), at this version. The ebuild is here because build
# hooks name the atom as on Gentoo: layouts/gentoo's glibc image lists
# sys-apps/portage in package.provided (provide_package), which needs a
# visible version of it.
EAPI=8

DESCRIPTION="The package manager of Gentoo (stand-in: installs nothing)"
HOMEPAGE="https://wiki.gentoo.org/wiki/Project:Portage"
S="${WORKDIR}"
LICENSE="GPL-2"
SLOT="0"
KEYWORDS="amd64"
