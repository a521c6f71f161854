# A child image: greeting (and hello) on top of base's glibc, slimmed, with
# USE flags changed by a helper and man pages kept.
_packages="app-misc/greeting app-misc/fat app-misc/palette app-misc/owned dev-libs/libfoo:1"
_keep_man=true
_keep_locales="de"

configure_builder() {
  echo "configure_builder ran" >/tmp/bob-test-configure-builder
}

configure_rootfs_build() {
  update_use app-misc/palette +blue -red
}

finish_rootfs_build() {
  copy_gcc_libs
  uninstall_package dev-libs/libfoo:1
  echo "made by finish_rootfs_build" >"${_EMERGE_ROOT}/etc/app-finished"
}
