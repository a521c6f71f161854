# Hooks for gentoo/glibc.

_timezone="${BOB_TIMEZONE:-UTC}"
_glibc_locales=("C.UTF8 UTF-8" "en_US.UTF-8 UTF-8")

configure_builder()
{
    # Only the locales the image ships, compiled into the archive.
    : > /etc/locale.gen
    local locale
    for locale in "${_glibc_locales[@]}"; do
        echo "${locale}" >> /etc/locale.gen
    done
    locale-gen
    echo "${_timezone}" > /etc/timezone
}

configure_rootfs_build()
{
    # The parent's busybox replaces these.
    update_use 'sys-apps/util-linux' -su -logger
    update_use 'sys-libs/ncurses' +minimal
    provide_package sys-apps/portage
}

finish_rootfs_build()
{
    mkdir -p "${_EMERGE_ROOT}"/usr/lib/locale "${_EMERGE_ROOT}"/etc
    cp /usr/lib/locale/locale-archive "${_EMERGE_ROOT}"/usr/lib/locale/
    cp /etc/locale.gen /etc/timezone "${_EMERGE_ROOT}"/etc/
    cp /usr/share/zoneinfo/"${_timezone}" "${_EMERGE_ROOT}"/etc/localtime
    # Iconv modules are rarely needed and weigh several megabytes.
    rm -rf "${_EMERGE_ROOT}"/usr/lib64/gconv
}
