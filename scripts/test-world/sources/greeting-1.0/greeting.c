/* app-misc/greeting: runs app-misc/hello (its runtime dependency) so a test
 * sees that emerge installed the dependency into the same root. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("greeting 1.0 asks hello to greet you:\n");
	fflush(stdout);
	execl("/usr/bin/hello", "hello", "container", (char *)NULL);
	perror("greeting: cannot run /usr/bin/hello");
	return 1;
}
