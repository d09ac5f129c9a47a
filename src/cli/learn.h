/*
 * learn.h - `paddock run --learn OUT`: the destinations the gateway and the DNS filter denied
 * during one run, turned into a proposed policy for the user to review. Nothing is allowed
 * automatically.
 *
 * Input: the run's access log (JSON lines, docs/sandbox.md), from byte `log_from` on, lines of
 * sandbox `sandbox_id` only. Denials a new allow rule would fix (`destination_not_allowed`,
 * `ip_literal_not_allowed`, DNS `name_not_allowed`) become candidate rules, one per name or address
 * (ports, plain-HTTP methods and path prefixes seen, counts); the others (a port, method or path an
 * existing rule does not list, a non-public address, rate limits, budgets, DNS tunnelling checks)
 * are listed as notes naming the rule and the reason the gateway gave.
 *
 * Output: OUT is the original policy text, unchanged, with the candidate rules inserted as
 * commented-out entries at the end of its block-style `allow:` list (or, without one, a commented
 * `allow:` list at the end), and the notes in a comment block after them. Uncommenting a candidate
 * (removing its lines' leading "# ") gives a valid policy that allows what was denied. A JSON
 * policy, or a flow-style `allow: [...]`, cannot take entries in place: the candidates then follow
 * the text as a commented list to merge by hand. OUT is written whole or not at all (a temporary
 * file renamed over it, mode 0644).
 */
#ifndef PD_CLI_LEARN_H
#define PD_CLI_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/err.h"

struct pd_learn_opts {
    const char *log_path; /* the run's access log */
    off_t log_from; /* where this run's lines start */
    const char *sandbox_id; /* only this sandbox's lines count */
    const char *policy_path; /* the policy run with, or NULL for the built-in empty one */
    const char *out_path; /* the proposal */
    const char *command; /* the command that ran, for the proposal's header (may be NULL) */
};

struct pd_learn_summary {
    size_t candidates; /* rules proposed */
    size_t notes; /* denials listed for the user without a rule */
    size_t denials; /* denied requests and queries read */
    bool relative_path_moved; /* the policy has relative paths and OUT is in another directory */
    bool in_place; /* candidates went into the policy's block allow list (uncommenting suffices) */
};

/* The core, in memory (also the fuzz target's entry): the proposal for a policy text (NULL: the
 * built-in empty policy) and the log lines readable from `log`. *out is malloc'ed (the caller frees
 * it). 0, or -1 with err (the policy does not load, out of memory). */
struct pd_learn_input {
    const char *policy_name; /* for messages and relative paths (may be NULL with no text) */
    const char *policy_text;
    size_t policy_len;
    FILE *log;
    const char *sandbox_id;
    const char *command; /* may be NULL */
    const char *out_path; /* where the proposal will live, or NULL (no directory check) */
};
int pd_learn_build(const struct pd_learn_input *in, char **out, size_t *out_len,
                   struct pd_learn_summary *sum, struct pd_err *err);

/* Read the log, write the proposal. 0, or -1 with err (the log or the policy cannot be read, OUT
 * cannot be written; OUT is then untouched). */
int pd_learn_propose(const struct pd_learn_opts *o, struct pd_learn_summary *sum,
                     struct pd_err *err);

/* For the line `paddock run` prints when a run had denials: the destinations denied (at most six,
 * then "and N more"), in buf (one printable line, cut to cap), and how many denials the log holds.
 * 0, or -1 (unreadable log, out of memory). */
int pd_learn_summarize(FILE *log, const char *sandbox_id, char *buf, size_t cap, size_t *denials);

#endif
