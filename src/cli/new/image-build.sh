# Hooks for @ID@, sourced by bob-core inside the build container
# (gentoo-bb/kubler's names and order; each hook is optional).
# Helpers: update_use, update_keywords, mask_package, unmask_package,
# provide_package, download_file, copy_gcc_libs.
# ${_EMERGE_ROOT} is the image root being built.

# Configure the build container itself (runs before the packages are emerged;
# what it changes carries down to the images built on this one).
#configure_builder()
#{
#    :
#}

# Set USE flags, keywords, masks for the packages of image.toml.
configure_rootfs_build()
{
    # update_use 'app-misc/foo' +bar -baz
    :
}

# Last touches on ${_EMERGE_ROOT} after the emerge: config files, users, cleanup.
finish_rootfs_build()
{
    :
}
