# Hooks of the demo builder, run once in its container; the images of the
# demo stack build on the state this leaves.

configure_builder()
{
    # Quiet builds keep the demo's log readable; the full build log stays in
    # the container's /var/tmp/portage.
    echo 'EMERGE_DEFAULT_OPTS="${EMERGE_DEFAULT_OPTS} --quiet-build=y"' >> /etc/portage/make.conf
}
