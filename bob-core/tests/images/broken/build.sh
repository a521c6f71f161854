# An image whose package fails to build.
_packages="app-misc/broken"
