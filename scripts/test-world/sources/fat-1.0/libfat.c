#include "fat.h"
int fat_answer(void) { return 42; }
