# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

inherit acct-user

DESCRIPTION="kiln test user"
ACCT_USER_ID=1234
ACCT_USER_GROUPS=( kiln )
ACCT_USER_HOME=/var/lib/kiln
ACCT_USER_HOME_PERMS=0750
acct-user_add_deps
