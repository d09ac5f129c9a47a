/*
 * cli.c - global options and subcommand dispatch (see cli.h).
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#ifndef PD_VERSION
#define PD_VERSION "unknown"
#endif

static const struct pd_cmd commands[] = {
    {"help", "show this help, or a command's help (paddock help COMMAND)", pd_cmd_help},
    {"version", "print the version", pd_cmd_version},
    {"inspect-host", "show how Paddock reads a host: canonical form, IP spellings, address classes",
     pd_cmd_inspect_host},
    {"gateway", "run the egress gateway (HTTP forward proxy with an allowlist)", pd_cmd_gateway},
    {"doctor", "check which sandbox isolation layers this host offers, and why any is missing",
     pd_cmd_doctor},
    {"run", "run a command in a sandbox whose only way out is its own egress gateway", pd_cmd_run},
    {"policy", "check a policy, explain one destination, list its keys (policy check|explain|keys)",
     pd_cmd_policy},
};

static const size_t ncommands = sizeof commands / sizeof commands[0];

int pd_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "paddock%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static void print_usage(FILE *f)
{
    fprintf(f,
            "paddock %s - a secure runtime for AI agents\n"
            "\n"
            "usage: paddock [--log-level LEVEL] [--log-file PATH] COMMAND [ARGS...]\n"
            "\n"
            "commands:\n",
            PD_VERSION);
    for (size_t i = 0; i < ncommands; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "global options:\n"
               "  --log-level LEVEL  debug, info, warn, error or off (default info; env "
               "PADDOCK_LOG_LEVEL)\n"
               "  --log-file PATH    append JSON log lines to PATH instead of stderr\n"
               "  -h, --help         show this help\n"
               "  -V, --version      print the version\n"
               "\n"
               "Run 'paddock COMMAND --help' for a command's options.\n");
}

static const struct pd_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < ncommands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int pd_cmd_version(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: paddock version\n\nPrint the version of this paddock binary.\n");
        return 0;
    }
    if (argc > 1)
        return pd_cli_usage_error("version", "takes no arguments, got '%s'", argv[1]);
    printf("paddock %s\n", PD_VERSION);
    return 0;
}

int pd_cmd_help(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: paddock help [COMMAND]\n\nList the commands, or show one command's help.\n");
        return 0;
    }
    if (argc > 2)
        return pd_cli_usage_error("help", "takes at most one COMMAND, got %d arguments", argc - 1);
    if (argc == 2) {
        const struct pd_cmd *c = find_command(argv[1]);
        if (!c)
            return pd_cli_usage_error("help", "unknown command '%s' (see 'paddock --help')",
                                      argv[1]);
        char *sub[] = {argv[1], "--help", NULL};
        return c->run(2, sub);
    }
    print_usage(stdout);
    return 0;
}

/* Parses "--opt VALUE" and "--opt=VALUE". Returns the value, or NULL when argv[*i] is not this
 * option. */
static const char *option_value(int argc, char **argv, int *i, const char *opt, int *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

int pd_cli_main(int argc, char **argv)
{
    const char *env_level = getenv("PADDOCK_LOG_LEVEL");
    if (env_level && *env_level) {
        enum pd_log_level lv;
        if (!pd_log_level_parse(env_level, &lv))
            return pd_cli_usage_error(NULL,
                                      "PADDOCK_LOG_LEVEL='%s' is not a log level "
                                      "(expected debug, info, warn, error or off)",
                                      env_level);
        pd_log_set_level(lv);
    }

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        int missing = 0;
        const char *v;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("paddock %s\n", PD_VERSION);
            return 0;
        }
        if ((v = option_value(argc, argv, &i, "--log-level", &missing))) {
            enum pd_log_level lv;
            if (!pd_log_level_parse(v, &lv))
                return pd_cli_usage_error(NULL,
                                          "--log-level '%s' is not a log level "
                                          "(expected debug, info, warn, error or off)",
                                          v);
            pd_log_set_level(lv);
            continue;
        }
        if (!missing && (v = option_value(argc, argv, &i, "--log-file", &missing))) {
            struct pd_err err;
            if (pd_log_open_file(v, &err) != 0) {
                fprintf(stderr, "paddock: %s\n", err.msg);
                return 1;
            }
            continue;
        }
        if (missing)
            return pd_cli_usage_error(NULL, "option '%s' needs a value", a);
        return pd_cli_usage_error(NULL, "unknown option '%s' (see 'paddock --help')", a);
    }
    if (i >= argc) {
        print_usage(stderr);
        return 2;
    }
    const struct pd_cmd *c = find_command(argv[i]);
    if (!c)
        return pd_cli_usage_error(NULL, "unknown command '%s' (see 'paddock --help' for the list)",
                                  argv[i]);
    int rc = c->run(argc - i, argv + i);
    pd_log_shutdown();
    return rc;
}
