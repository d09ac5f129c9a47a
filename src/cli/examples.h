/*
 * examples.h - the example policies (the .yaml files of examples/), built into the binary (src/cli/meson.build
 * generates examples.c from the files at configure time), so `paddock policy example NAME` works
 * wherever the binary is installed. The texts are the files' bytes, unchanged.
 */
#ifndef PD_CLI_EXAMPLES_H
#define PD_CLI_EXAMPLES_H

struct pd_example {
    const char *name; /* "claude-code": the file name without .yaml */
    const char *text;
};

/* Terminated by {NULL, NULL}. */
extern const struct pd_example pd_examples[];

#endif
