# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Built with redis' own copies of lua, hiredis and linenoise (deps/); ::gentoo
# unbundles lua. No TLS: the test world has no OpenSSL built from source.
EAPI=8

DESCRIPTION="A persistent caching system, key-value and data structures database"
HOMEPAGE="https://redis.io"
SRC_URI="https://download.redis.io/releases/${P}.tar.gz"
LICENSE="BSD"
SLOT="0"
KEYWORDS="amd64"
IUSE="jemalloc"

RDEPEND="
	acct-group/redis
	acct-user/redis
	virtual/libc
"
DEPEND="virtual/libc"
# fowners below resolves the user's name in the build system (BROOT): the
# account must exist there too, with the same fixed id.
BDEPEND="
	acct-group/redis
	acct-user/redis
"

redis_make() {
	emake V=1 CC="${CHOST}-gcc" AR="${CHOST}-ar" RANLIB="${CHOST}-ranlib" \
		OPTIMIZATION="${CFLAGS}" LDFLAGS="${LDFLAGS}" \
		MALLOC="$(usex jemalloc jemalloc libc)" BUILD_TLS=no USE_SYSTEMD=no "$@"
}

src_compile() {
	redis_make
}

src_install() {
	redis_make PREFIX="${ED}/usr" install
	insinto /etc/redis
	# Gentoo's defaults: a data dir of its own, logging to stdout
	sed -e 's|^dir \./|dir /var/lib/redis/|' redis.conf | newins - redis.conf
	doins sentinel.conf
	keepdir /var/lib/redis
	# the server runs as redis and writes its snapshots here
	fowners redis:redis /var/lib/redis
	fperms 0750 /var/lib/redis
	dodoc 00-RELEASENOTES README.md
}
