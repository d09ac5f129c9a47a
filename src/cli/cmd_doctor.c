/*
 * cmd_doctor.c - `paddock doctor`: what this host offers the sandbox, layer by layer
 * (src/sandbox/probe.h).
 *
 * Prints one row per layer (id, state, detail) or, with --json, one JSON object with the same data.
 * Exit status: 0 when every layer the sandbox needs is available, 1 when one is not (named at the
 * end), 2 on usage errors. The probe never changes this process: everything it tries happens in
 * short-lived children.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sandbox/probe.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: paddock doctor [--json]\n"
        "\n"
        "Probe this host for each isolation layer the sandbox uses (user, mount, PID, network, "
        "UTS,\n"
        "IPC and cgroup namespaces; seccomp; no_new_privs; capability dropping; Landlock; pidfd;\n"
        "cgroup resource limits; tmpfs and devpts inside the namespaces; the terminal) and report\n"
        "each as available, partial or missing, with the reason. Nothing on the host is changed:\n"
        "every attempt runs in a short-lived child process.\n"
        "\n"
        "  --json        one JSON object on stdout instead of the table\n"
        "\n"
        "Exit status: 0 if every layer the sandbox needs is available, 1 if one is not, 2 on "
        "usage\n"
        "errors.\n");
}

static const char *state_text(const struct pd_probe_entry *e)
{
    if (e->state == PD_PROBE_AVAILABLE && e->in_use)
        return "in use";
    return pd_probe_state_name(e->state);
}

static int print_json(const struct pd_probe *p, int missing)
{
    json_t *root = json_object();
    json_t *layers = json_array();
    json_t *degraded = json_array();
    if (!root || !layers || !degraded)
        goto oom;
    for (size_t i = 0; i < p->nlayers; i++) {
        const struct pd_probe_entry *e = &p->layers[i];
        json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:s}", "id", e->id, "state",
                              pd_probe_state_name(e->state), "in_use", e->in_use, "required",
                              e->required, "detail", e->detail);
        if (!o || json_array_append_new(layers, o) != 0)
            goto oom;
        if (e->required && e->state != PD_PROBE_AVAILABLE &&
            json_array_append_new(degraded, json_string(e->id)) != 0)
            goto oom;
    }
    json_object_set_new(root, "ok", json_boolean(missing == 0));
    json_object_set_new(root, "layers", layers);
    json_object_set_new(root, "not_available", degraded);
    layers = degraded = NULL;
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s)
        goto oom;
    printf("%s\n", s);
    free(s);
    json_decref(root);
    return 0;
oom:
    json_decref(layers);
    json_decref(degraded);
    json_decref(root);
    fprintf(stderr, "paddock doctor: out of memory\n");
    return -1;
}

static void print_table(const struct pd_probe *p, int missing)
{
    printf("%-13s %-10s %s\n", "LAYER", "STATE", "DETAIL");
    for (size_t i = 0; i < p->nlayers; i++) {
        const struct pd_probe_entry *e = &p->layers[i];
        printf("%-13s %-10s %s%s\n", e->id, state_text(e), e->required ? "" : "(informational) ",
               e->detail);
    }
    printf("\n");
    if (missing == 0) {
        printf("ok: every layer the sandbox needs is available on this host\n");
        return;
    }
    printf("not available: ");
    int n = 0;
    for (size_t i = 0; i < p->nlayers; i++) {
        const struct pd_probe_entry *e = &p->layers[i];
        if (e->required && e->state != PD_PROBE_AVAILABLE)
            printf("%s%s (%s)", n++ ? ", " : "", e->id, pd_probe_state_name(e->state));
    }
    printf(
        "\nthe sandbox needs these layers: it will refuse to start without them unless told to run "
        "degraded, layer by layer (--allow-degraded=LAYER)\n");
}

int pd_cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool as_json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return pd_cli_usage_error("doctor", "unknown option '%s' (see 'paddock doctor --help')",
                                      argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pd_cli_usage_error(
            "doctor", "takes no arguments, got '%s' (see 'paddock doctor --help')", argv[optind]);
    fflush(stdout); /* nothing buffered may be duplicated into the probe's children */
    struct pd_probe *p = malloc(sizeof *p);
    if (!p) {
        fprintf(stderr, "paddock doctor: out of memory\n");
        return 1;
    }
    int missing = pd_probe_run(p);
    int rc = missing == 0 ? 0 : 1;
    if (as_json) {
        if (print_json(p, missing) != 0)
            rc = 1;
    } else {
        print_table(p, missing);
    }
    free(p);
    return rc;
}
