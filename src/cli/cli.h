/*
 * cli.h - the `paddock` command line: global options and the subcommand dispatch table.
 *
 * Each subcommand is a `struct pd_cmd` in the table in cli.c; a component plugs in by adding one
 * row and one `int pd_cmd_<name>(int argc, char **argv)` entry point (argv[0] is the subcommand
 * name). Entry points return the process exit status: 0 success, 1 failure at run time, 2 usage
 * error. They print usage errors on stderr as "paddock <cmd>: <what was wrong>" followed by a hint,
 * never a bare usage dump.
 */
#ifndef PD_CLI_CLI_H
#define PD_CLI_CLI_H

#include <stdbool.h>

struct pd_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

/* The whole program: parses global options, dispatches, returns the exit status. */
int pd_cli_main(int argc, char **argv);

/* Print "paddock <cmd>: <message>\n" on stderr (printf format) and return 2. */
int pd_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Subcommand entry points. */
int pd_cmd_version(int argc, char **argv);
int pd_cmd_help(int argc, char **argv);
int pd_cmd_inspect_host(int argc, char **argv);
int pd_cmd_gateway(int argc, char **argv);
int pd_cmd_doctor(int argc, char **argv);
int pd_cmd_run(int argc, char **argv);
int pd_cmd_policy(int argc, char **argv);

#endif
