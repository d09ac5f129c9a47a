/* probe_cgroup.c - the host probe's cgroup layer (see probe.h): cgroup v2 with a delegated subtree
 * offering memory, pids and cpu, else writable cgroup v1 hierarchies for them, else rlimits only. A
 * test group is created in a child process and always removed again. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/str.h"
#include "sandbox/cgroup.h"
#include "sandbox/probe_int.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

#define NCG 3 /* memory, pids, cpu: the first three of enum pd_cg_ctl */

struct cg_plan {
    int version; /* 2, 1, or 0 (none) */
    struct pd_cg_layout lay; /* mount points and the caller's groups (sandbox/cgroup.h) */
    const char *v2_dir; /* v2: the caller's own cgroup directory */
    char probe_name[64]; /* paddock-probe-<pid> */
};

static const char *cg_name(size_t k)
{
    return pd_cg_ctl_name((enum pd_cg_ctl)k);
}

static void plan_cgroups(const struct probe_ctx *c, struct cg_plan *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->probe_name, sizeof p->probe_name, "paddock-probe-%ld", (long)c->self);
    pd_cg_layout_read(NULL, &p->lay);
    p->version = p->lay.kind == PD_CG_V2 ? 2 : p->lay.kind == PD_CG_V1 ? 1 : 0;
    /* an unreadable /proc/self/cgroup: try the root, as before */
    p->v2_dir = p->lay.v2_own[0] ? p->lay.v2_own : p->lay.v2_root;
}

static void child_cgroup_v2(const struct cg_plan *p, struct child_report *r)
{
    char dir[PD_CG_PATH_MAX + 64], path[PD_CG_PATH_MAX + 128], ctl[256];
    snprintf(dir, sizeof dir, "%s/%s", p->v2_dir, p->probe_name);
    if (mkdir(dir, 0755) != 0) {
        probe_rep(r, PD_PROBE_MISSING,
                  "cgroup v2: mkdir %s: %s (no delegated writable subtree: rlimits only)", dir,
                  strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
    if (probe_read_small(path, ctl, sizeof ctl) != 0)
        ctl[0] = '\0';
    char ok[64] = "", bad[PD_PROBE_DETAIL_MAX] = "";
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    for (size_t k = 0; k < NCG; k++) {
        /* cgroup.controllers is space-separated: look for the word */
        bool offered = false;
        size_t n = strlen(cg_name(k));
        for (const char *q = ctl; (q = strstr(q, cg_name(k))) != NULL; q += n)
            if ((q == ctl || q[-1] == ' ') && (q[n] == ' ' || q[n] == '\0'))
                offered = true;
        if (!offered) {
            pd_appendf(bad, sizeof bad, "%s%s (not in %s/cgroup.subtree_control)",
                       bad[0] ? ", " : "", cg_name(k), p->v2_dir);
            continue;
        }
        char w[32];
        snprintf(w, sizeof w, "+%s", cg_name(k));
        if (probe_write_str(path, w) == 0)
            pd_appendf(ok, sizeof ok, "%s%s", ok[0] ? "," : "", cg_name(k));
        else
            pd_appendf(bad, sizeof bad, "%s%s (enabling: %s)", bad[0] ? ", " : "", cg_name(k),
                       strerror(errno));
    }
    int rm = rmdir(dir);
    int rme = errno;
    if (!bad[0])
        probe_rep(
            r, PD_PROBE_AVAILABLE,
            "cgroup v2: test group under %s created, %s enabled in its subtree_control, removed",
            p->v2_dir, ok);
    else
        probe_rep(r, ok[0] ? PD_PROBE_PARTIAL : PD_PROBE_MISSING,
                  "cgroup v2: test group under %s created and removed; usable: %s; not: %s%s",
                  p->v2_dir, ok[0] ? ok : "none", bad, ok[0] ? "" : " (rlimits only)");
    if (rm != 0)
        pd_appendf(r->detail, sizeof r->detail, "; rmdir %s: %s", dir, strerror(rme));
}

static void child_cgroup_v1(const struct cg_plan *p, struct child_report *r)
{
    char ok[64] = "", bad[PD_PROBE_DETAIL_MAX] = "";
    for (size_t k = 0; k < NCG; k++) {
        if (!p->lay.v1_mnt[k][0]) {
            pd_appendf(bad, sizeof bad, "%s%s: no v1 hierarchy mounted", bad[0] ? "; " : "",
                       cg_name(k));
            continue;
        }
        char dir[PD_CG_PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s/%s", p->lay.v1_mnt[k], p->probe_name);
        if (mkdir(dir, 0755) != 0) {
            pd_appendf(bad, sizeof bad, "%smkdir %s: %s", bad[0] ? "; " : "", dir, strerror(errno));
            continue;
        }
        if (rmdir(dir) != 0) {
            pd_appendf(bad, sizeof bad, "%srmdir %s: %s", bad[0] ? "; " : "", dir, strerror(errno));
            continue;
        }
        pd_appendf(ok, sizeof ok, "%s%s", ok[0] ? "," : "", cg_name(k));
    }
    if (!bad[0])
        probe_rep(r, PD_PROBE_AVAILABLE,
                  "cgroup v1: a test group created and removed in the %s hierarchies", ok);
    else if (ok[0])
        probe_rep(r, PD_PROBE_PARTIAL, "cgroup v1: test group works for %s; not for: %s", ok, bad);
    else
        probe_rep(r, PD_PROBE_MISSING, "cgroup v1: %s (rlimits only)", bad);
}

static void child_cgroup(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)c;
    const struct cg_plan *p = (const struct cg_plan *)(intptr_t)param;
    if (p->version == 2)
        child_cgroup_v2(p, r);
    else
        child_cgroup_v1(p, r);
}

void probe_cgroup(const struct probe_ctx *c, struct pd_probe_entry *e)
{
    struct cg_plan *p = malloc(sizeof *p);
    if (!p) {
        e->state = PD_PROBE_MISSING;
        snprintf(e->detail, sizeof e->detail, "cannot run the probe: out of memory");
        return;
    }
    plan_cgroups(c, p);
    if (p->version == 0) {
        e->state = PD_PROBE_MISSING;
        snprintf(e->detail, sizeof e->detail,
                 "%s is not a cgroup2 mount and no v1 memory/pids/cpu hierarchy is mounted: "
                 "resource limits would be rlimits only",
                 CGROUP_ROOT);
    } else {
        struct child_report r;
        probe_run_child(c, child_cgroup, (long)(intptr_t)p, &r);
        e->state = (enum pd_probe_state)r.state;
        snprintf(e->detail, sizeof e->detail, "%s", r.detail);
        /* The child removes its groups; if it died half-way, remove them here. */
        char dir[PD_CG_PATH_MAX + 64];
        bool leftover = false;
        if (p->version == 2) {
            snprintf(dir, sizeof dir, "%s/%s", p->v2_dir, p->probe_name);
            leftover = rmdir(dir) == 0;
        } else {
            for (size_t k = 0; k < NCG; k++) {
                if (!p->lay.v1_mnt[k][0])
                    continue;
                snprintf(dir, sizeof dir, "%s/%s", p->lay.v1_mnt[k], p->probe_name);
                leftover = rmdir(dir) == 0 || leftover;
            }
        }
        if (leftover)
            pd_appendf(e->detail, sizeof e->detail, "; a leftover test group was removed");
    }
    if (p->lay.note[0])
        pd_appendf(e->detail, sizeof e->detail, "; %s", p->lay.note);
    free(p);
}
