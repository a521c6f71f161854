/* libfoo 1.2 (slot 1) of kiln's test world */
#ifndef FOO_H
#define FOO_H
const char *foo_version(void);
#endif
