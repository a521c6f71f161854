# The bottom image of bob-core's test stack: the C library only.
_packages="sys-libs/glibc virtual/libc"
