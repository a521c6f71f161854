#include <stdio.h>
#include "fat.h"
int main(void) { printf("fat says %d\n", fat_answer()); return 0; }
