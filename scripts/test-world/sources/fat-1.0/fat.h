/* app-misc/fat: installs everything slimming removes */
#ifndef FAT_H
#define FAT_H
int fat_answer(void);
#endif
