# Hooks for gentoo/busybox.

configure_rootfs_build()
{
    update_use 'sys-apps/busybox' +make-symlinks +static
    update_use 'virtual/libcrypt' +static-libs
    update_use 'sys-libs/libxcrypt' +static-libs
}

finish_rootfs_build()
{
    # Users, a home for root, the directories daemons expect.
    mkdir -p "${_EMERGE_ROOT}"/etc "${_EMERGE_ROOT}"/root "${_EMERGE_ROOT}"/run "${_EMERGE_ROOT}"/var/log
    cp /etc/passwd /etc/group "${_EMERGE_ROOT}"/etc/
    sed -i 's|/bin/bash|/bin/sh|' "${_EMERGE_ROOT}"/etc/passwd
    ln -sfn ../run "${_EMERGE_ROOT}"/var/run
    mkdir -p "${_EMERGE_ROOT}"/var/spool/cron/crontabs
    chmod 0600 "${_EMERGE_ROOT}"/var/spool/cron/crontabs
    rm -rf "${_EMERGE_ROOT}"/etc/init.d
}
