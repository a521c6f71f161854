# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

DESCRIPTION="Virtual for the C library"
SLOT="0"
KEYWORDS="amd64"

RDEPEND="elibc_glibc? ( sys-libs/glibc )"
