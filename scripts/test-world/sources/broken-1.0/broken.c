/* app-misc/broken: a fixture whose build must fail, for error reporting tests. */
int main(void)
{
	return this_symbol_does_not_exist_in_kiln_test_world;
}
