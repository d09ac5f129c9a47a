/*
 * fuzz_learn.c - libFuzzer target for `paddock run --learn` (src/cli/learn.c, pd_learn_build): a
 * policy text and access-log lines (the log's strings come from what the agent asked for) become a
 * proposal.
 *
 * Input: POLICY "\n--LOG--\n" LOG, or only LOG (the built-in empty policy). The policy is named
 * p.yaml (YAML); the log is read through fmemopen. Invariants:
 *  - no crash, leak or undefined behaviour; an error has a message;
 *  - the proposal starts with its header comment and, as written, means exactly what the policy
 *    means (everything added is a comment): loading both gives equal documents;
 *  - when the candidates went into the policy's own allow list and the policy had no comments of
 *    its own, uncommenting them (removing "# " before "- " and "  ") gives a document that loads,
 *    whose allow list grew by exactly the number of candidates written.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/learn.h"
#include "core/config.h"
#include "core/log.h"

#define SEP "\n--LOG--\n"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pd_log_set_level(PD_LOG_OFF);
    return 0;
}

/* Remove "# " where it comments out a candidate line; count the "- " lines uncommented. */
static char *uncomment(const char *s, size_t len, size_t *out_len, size_t *items)
{
    char *o = malloc(len + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    *items = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] == ' ')
            j++;
        bool cand = j + 3 < len && s[j] == '#' && s[j + 1] == ' ' &&
                    ((s[j + 2] == '-' && s[j + 3] == ' ') || (s[j + 2] == ' ' && s[j + 3] == ' '));
        if (cand && s[j + 2] == '-')
            (*items)++;
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : len;
        for (size_t p = i; p < end; p++) {
            if (cand && (p == j || p == j + 1))
                continue;
            o[k++] = s[p];
        }
        i = end;
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *d = (const char *)data;
    const char *sep = memmem(d, size, SEP, strlen(SEP));
    char *policy = NULL;
    size_t plen = 0;
    const char *log = d;
    size_t loglen = size;
    if (sep) {
        plen = (size_t)(sep - d);
        policy = malloc(plen + 1);
        if (!policy)
            return 0;
        memcpy(policy, d, plen);
        policy[plen] = '\0';
        log = sep + strlen(SEP);
        loglen = size - plen - strlen(SEP);
    }
    char *logcopy = malloc(loglen + 1);
    if (!logcopy) {
        free(policy);
        return 0;
    }
    memcpy(logcopy, log, loglen);
    FILE *f = fmemopen(logcopy, loglen ? loglen : 1, "r");
    if (!f) {
        free(logcopy);
        free(policy);
        return 0;
    }
    struct pd_learn_input in = {.policy_name = policy ? "p.yaml" : NULL,
                                .policy_text = policy,
                                .policy_len = plen,
                                .log = f,
                                .sandbox_id = "fz",
                                .command = "agent",
                                .out_path = NULL};
    char *out = NULL;
    size_t out_len = 0;
    struct pd_learn_summary sum;
    struct pd_err err = {{0}};
    int rc = pd_learn_build(&in, &out, &out_len, &sum, &err);
    fclose(f);
    if (rc != 0) {
        if (!err.msg[0] || out)
            abort();
    } else {
        if (!out || strncmp(out, "# Proposed by `paddock run --learn`", 35) != 0 ||
            strlen(out) != out_len)
            abort();
        struct pd_err e1 = {{0}}, e2 = {{0}};
        struct pd_config_doc *a =
            policy ? pd_config_load_buffer("p.yaml", policy, plen, PD_CONFIG_YAML, &e1) : NULL;
        struct pd_config_doc *b =
            pd_config_load_buffer("p.yaml", out, out_len, PD_CONFIG_YAML, &e2);
        if (a && (!b || !json_equal(pd_config_root(a), pd_config_root(b))))
            abort(); /* the proposal, as written, must mean what the policy means */
        if (a && sum.in_place && !memchr(policy, '#', plen)) {
            size_t ulen = 0, items = 0;
            char *u = uncomment(out, out_len, &ulen, &items);
            if (u) {
                struct pd_err e3 = {{0}};
                struct pd_config_doc *c =
                    pd_config_load_buffer("p.yaml", u, ulen, PD_CONFIG_YAML, &e3);
                size_t before = json_array_size(json_object_get(pd_config_root(a), "allow"));
                if (!c ||
                    json_array_size(json_object_get(pd_config_root(c), "allow")) != before + items)
                    abort();
                pd_config_doc_free(c);
                free(u);
            }
        }
        pd_config_doc_free(a);
        pd_config_doc_free(b);
    }
    free(out);
    free(logcopy);
    free(policy);
    return 0;
}
