# Hooks for gentoo/redis.

configure_rootfs_build()
{
    update_use 'dev-lang/lua' -readline
    update_use 'dev-libs/jemalloc' +stats
}

finish_rootfs_build()
{
    # In a container the network namespace is the boundary: listen everywhere.
    sed -i -e 's/^bind 127.0.0.1/#bind 127.0.0.1/' \
           -e 's/^protected-mode yes/protected-mode no/' "${_EMERGE_ROOT}"/etc/redis/redis.conf
    copy_gcc_libs
    mkdir -p "${_EMERGE_ROOT}"/service
    cp -r /config/etc/service "${_EMERGE_ROOT}"/etc/
    chmod +x "${_EMERGE_ROOT}"/etc/service/redis/run
    ln -s /etc/service/redis "${_EMERGE_ROOT}"/service/redis
}
