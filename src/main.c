/* main.c - the single `paddock` executable; everything happens in src/cli/cli.c. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return pd_cli_main(argc, argv);
}
