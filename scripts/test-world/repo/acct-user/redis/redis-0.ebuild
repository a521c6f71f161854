# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

inherit acct-user

DESCRIPTION="User of the redis server"
ACCT_USER_ID=75
ACCT_USER_GROUPS=( redis )
acct-user_add_deps
