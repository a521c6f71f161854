/* libfoo 2.0 (slot 2) of kiln's test world */
#ifndef FOO_H
#define FOO_H
const char *foo_version(void);
#endif
