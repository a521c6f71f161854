# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

EAPI=8

inherit acct-user

DESCRIPTION="User of the nginx web server"
ACCT_USER_ID=82
ACCT_USER_GROUPS=( nginx )
ACCT_USER_HOME=/var/lib/nginx
acct-user_add_deps
