# Hooks for demo/glibc.

finish_rootfs_build()
{
    # Programs look users up by name; give the image root and nobody.
    mkdir -p "${_EMERGE_ROOT}"/etc "${_EMERGE_ROOT}"/tmp
    chmod 1777 "${_EMERGE_ROOT}"/tmp
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "${_EMERGE_ROOT}"/etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' > "${_EMERGE_ROOT}"/etc/group
}
