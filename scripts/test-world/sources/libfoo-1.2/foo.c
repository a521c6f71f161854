#include "foo.h"
const char *foo_version(void) { return "1.2"; }
