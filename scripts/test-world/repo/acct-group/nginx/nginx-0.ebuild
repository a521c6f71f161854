# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

inherit acct-group

DESCRIPTION="Group of the nginx web server"
ACCT_GROUP_ID=82
