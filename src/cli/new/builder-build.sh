# Hooks for the builder @ID@, sourced by bob-core inside its container.
# Helpers: update_use, update_keywords, mask_package, unmask_package,
# provide_package, download_file.

# Configure the build container: make.conf, USE flags, extra tools.
configure_builder()
{
    :
}
