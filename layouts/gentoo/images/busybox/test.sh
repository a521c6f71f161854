#!/bin/sh
# Run in the built image: the shell and the applets must work.
set -e
busybox --help | head -n 1
[ "$(sh -c 'echo ok')" = ok ]
ls / > /dev/null
