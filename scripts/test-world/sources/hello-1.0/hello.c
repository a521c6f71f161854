/* app-misc/hello of kiln's test world: proves an emerged root runs on its own. */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("Hello, %s! (app-misc/hello 1.0 from kiln's test world)\n", argc > 1 ? argv[1] : "world");
	return 0;
}
