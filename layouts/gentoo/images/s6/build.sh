# Hooks for gentoo/s6.

finish_rootfs_build()
{
    # Images above link their service directories here.
    mkdir -p "${_EMERGE_ROOT}"/service "${_EMERGE_ROOT}"/etc/service
}
