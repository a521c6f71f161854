# Hooks of gentoo/bob, run once in its container.

configure_builder()
{
    mkdir -p /etc/portage/package.{accept_keywords,unmask,mask,use}
    eselect news read new > /dev/null
    # A UTF-8 locale for the build tools; the images get their own.
    echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen
    locale-gen
    echo 'LANG="en_US.utf8"' > /etc/env.d/02locale
    env-update
    update_use 'dev-vcs/git' -perl
}
