# Hooks for demo/glibc.

finish_rootfs_build()
{
    # Programs write temporary files; /etc/passwd and /etc/group with root
    # and nobody come from bob-core, as for every image without a parent.
    mkdir -p "${_EMERGE_ROOT}"/tmp
    chmod 1777 "${_EMERGE_ROOT}"/tmp
}
