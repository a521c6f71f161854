# Copyright 2026 kiln authors
# Distributed under the terms of the MIT License
# Part of the stand-in ebuild repository of kiln's test world (scripts/test-world).

# Unlike ::gentoo's nginx, no NGINX_MODULES_* USE_EXPAND: the modules are
# upstream's defaults plus those the USE flags below add. Like it, the
# workers run as the nginx user of acct-user/nginx, the configuration is
# Gentoo's shape (below) rather than upstream's sample, and the document
# root /var/www/localhost/htdocs starts empty.
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
	acct-group/nginx
	acct-user/nginx
	virtual/libc
	sys-libs/libxcrypt:=
	sys-libs/zlib:=
	pcre? ( dev-libs/libpcre2:= )
	ssl? ( dev-libs/openssl:0= )
"
DEPEND="${RDEPEND}"
# fowners below resolves the user's name in the build system (BROOT), so the
# account must exist there as well as in ROOT; its fixed id is the same in both.
BDEPEND="
	acct-group/nginx
	acct-user/nginx
"

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
		--user=nginx
		--group=nginx
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
	rm -f "${ED}"/etc/${PN}/*.default "${ED}"/etc/${PN}/${PN}.conf || die
	# upstream's sample pages; Gentoo serves an empty document root instead
	rm -r "${ED}"/usr/html || die
	insinto /etc/${PN}
	newins - ${PN}.conf <<-CONF
		# Gentoo-style defaults of kiln's test world: one local server on
		# 127.0.0.1 serving /var/www/localhost/htdocs. Images replace this.
		user nginx nginx;
		worker_processes 1;
		error_log /var/log/nginx/error_log info;

		events {
			worker_connections 1024;
		}

		http {
			include mime.types;
			default_type application/octet-stream;
			access_log /var/log/nginx/access_log;
			sendfile on;
			server {
				listen 127.0.0.1;
				server_name localhost;
				root /var/www/localhost/htdocs;
			}
		}
	CONF
	keepdir /var/www/localhost/htdocs /var/lib/${PN}/tmp /var/log/${PN}
	# the workers write request bodies and logs; nobody else reads them
	fowners ${PN}:0 /var/lib/${PN}/tmp
	fperms 0700 /var/lib/${PN}/tmp
	fowners 0:${PN} /var/log/${PN}
	fperms 0710 /var/log/${PN}
	dodoc CHANGES README
	doman man/nginx.8
}
