# Hooks for gentoo/nginx.

configure_rootfs_build()
{
    # The modules the image offers; nginx's ebuild reads these from make.conf.
    echo 'NGINX_MODULES_HTTP="access auth_basic autoindex charset fastcgi gzip gzip_static limit_req map proxy realip rewrite ssi stub_status v2"' >> /etc/portage/make.conf
    echo 'NGINX_MODULES_MAIL=""' >> /etc/portage/make.conf
    update_use 'app-misc/mime-types' +nginx
    update_use 'www-servers/nginx' +http2
}

finish_rootfs_build()
{
    # Gentoo's nginx.conf serves 127.0.0.1 only; in a container the network
    # namespace is the boundary, so listen on every address.
    sed -i 's/listen 127\.0\.0\.1;/listen 80;/' "${_EMERGE_ROOT}"/etc/nginx/nginx.conf
    mkdir -p "${_EMERGE_ROOT}"/etc/nginx/conf.d "${_EMERGE_ROOT}"/service
    cp -r /config/etc/service "${_EMERGE_ROOT}"/etc/
    chmod +x "${_EMERGE_ROOT}"/etc/service/nginx/run
    ln -s /etc/service/nginx "${_EMERGE_ROOT}"/service/nginx
}
