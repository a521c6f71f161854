# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Unlike ::gentoo's nginx, no NGINX_MODULES_* USE_EXPAND: the modules are
# upstream's defaults plus those the USE flags below add.
EAPI=8

DESCRIPTION="Robust, small and high performance http and reverse proxy server"
HOMEPAGE="https://nginx.org"
SRC_URI="https://nginx.org/download/${P}.tar.gz"
LICENSE="BSD-2"
SLOT="mainline"
KEYWORDS="amd64"
IUSE="+http2 +pcre ssl"

# The test world's dev-libs/openssl is Debian's runtime only, without
# headers (compiling OpenSSL would cost more than the rest of the world):
# USE=ssl stops in pkg_pretend with the reason instead of failing deep in
# nginx's configure.
RDEPEND="
	virtual/libc
	sys-libs/libxcrypt:=
	sys-libs/zlib:=
	pcre? ( dev-libs/libpcre2:= )
	ssl? ( dev-libs/openssl:0= )
"
DEPEND="${RDEPEND}"

pkg_pretend() {
	if use ssl; then
		die "USE=ssl needs OpenSSL's headers, and kiln's test world has only OpenSSL's runtime (dev-libs/openssl-3.0 copies Debian's libraries): build www-servers/nginx with USE=-ssl here"
	fi
}

src_configure() {
	local conf=(
		--prefix="${EPREFIX}/usr"
		--conf-path="${EPREFIX}/etc/${PN}/${PN}.conf"
		--error-log-path="${EPREFIX}/var/log/${PN}/error_log"
		--http-log-path="${EPREFIX}/var/log/${PN}/access_log"
		--pid-path="${EPREFIX}/run/${PN}.pid"
		--lock-path="${EPREFIX}/run/lock/${PN}.lock"
		--http-client-body-temp-path="${EPREFIX}/var/lib/${PN}/tmp/client"
		--http-proxy-temp-path="${EPREFIX}/var/lib/${PN}/tmp/proxy"
		--http-fastcgi-temp-path="${EPREFIX}/var/lib/${PN}/tmp/fastcgi"
		--http-scgi-temp-path="${EPREFIX}/var/lib/${PN}/tmp/scgi"
		--http-uwsgi-temp-path="${EPREFIX}/var/lib/${PN}/tmp/uwsgi"
		--with-cc="${CHOST}-gcc"
		--with-cc-opt="-I${ESYSROOT}/usr/include ${CFLAGS}"
		--with-ld-opt="-L${ESYSROOT}/usr/$(get_libdir) ${LDFLAGS}"
		--without-mail_pop3_module
		--without-mail_imap_module
		--without-mail_smtp_module
	)
	use http2 && conf+=( --with-http_v2_module )
	use pcre && conf+=( --with-pcre ) || conf+=( --without-pcre --without-http_rewrite_module )
	use ssl && conf+=( --with-http_ssl_module )
	# nginx's configure is its own script: econf's options would fail it.
	./configure "${conf[@]}" || die "nginx's configure failed"
}

src_install() {
	emake DESTDIR="${D}" install
	mv "${ED}"/usr/sbin "${ED}"/usr/bin || die
	# nginx's install copies the default configuration next to *.default files
	rm -f "${ED}"/etc/${PN}/*.default || die
	keepdir /var/lib/${PN}/tmp /var/log/${PN}
	dodoc CHANGES README
	doman man/nginx.8
}
