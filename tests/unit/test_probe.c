/*
 * test_probe.c - the host probe (src/sandbox/probe.h): it runs, every layer is reported with a
 * reason, ids are unique and stable, it is repeatable, and it leaves nothing behind (no child, no
 * thread, no fd, no cgroup test group).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/probe.h"

static const char *const expected_ids[] = {
    "userns",       "mountns", "pidns",    "netns", "utsns",  "ipcns", "cgroupns", "seccomp",
    "no_new_privs", "caps",    "landlock", "pidfd", "cgroup", "tmpfs", "devpts",   "tty",
};

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Entries whose name starts with "paddock-probe-" directly under dir (0 if dir is unreadable). */
static int probe_groups_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "paddock-probe-", 14) == 0)
            n++;
    closedir(d);
    return n;
}

/* Every cgroup hierarchy root, and the caller's own cgroup in each, checked for test groups. */
static int probe_groups_anywhere(void)
{
    int n = 0;
    DIR *d = opendir("/sys/fs/cgroup");
    if (!d)
        return 0;
    n += probe_groups_in("/sys/fs/cgroup");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s", de->d_name);
        n += probe_groups_in(path);
    }
    closedir(d);
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            char *ctl = strchr(line, ':');
            char *path = ctl ? strchr(ctl + 1, ':') : NULL;
            if (!path || strcmp(path + 1, "/") == 0)
                continue;
            *path = '\0';
            char dir[2048];
            const char *name = ctl[1] ? ctl + 1 : "";
            if (strncmp(name, "name=", 5) == 0)
                name += 5;
            snprintf(dir, sizeof dir, "/sys/fs/cgroup%s%s%s", name[0] ? "/" : "", name, path + 1);
            n += probe_groups_in(dir);
        }
        fclose(f);
    }
    return n;
}

static void test_every_layer_reported(void **state)
{
    (void)state;
    struct pd_probe p;
    int missing = pd_probe_run(&p);
    assert_true(missing >= 0);
    assert_int_equal(p.nlayers, PD_PROBE_NLAYERS);
    assert_int_equal(sizeof expected_ids / sizeof expected_ids[0], PD_PROBE_NLAYERS);
    int counted = 0;
    for (size_t i = 0; i < p.nlayers; i++) {
        const struct pd_probe_entry *e = &p.layers[i];
        assert_string_equal(e->id, expected_ids[i]); /* stable ids, stable order */
        assert_true(strlen(e->detail) > 0);
        assert_true(e->state == PD_PROBE_AVAILABLE || e->state == PD_PROBE_PARTIAL ||
                    e->state == PD_PROBE_MISSING);
        assert_ptr_equal(pd_probe_find(&p, e->id), e);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(p.layers[j].id, e->id);
        if (e->required && e->state != PD_PROBE_AVAILABLE)
            counted++;
    }
    assert_int_equal(counted, missing);
    assert_false(pd_probe_find(&p, "tty")->required);
    assert_null(pd_probe_find(&p, "nonexistent"));
    assert_string_equal(pd_probe_state_name(PD_PROBE_PARTIAL), "partial");
}

static void test_repeatable(void **state)
{
    (void)state;
    struct pd_probe a, b;
    pd_probe_run(&a);
    pd_probe_run(&b);
    for (size_t i = 0; i < PD_PROBE_NLAYERS; i++) {
        assert_string_equal(a.layers[i].id, b.layers[i].id);
        if (a.layers[i].state != b.layers[i].state)
            fail_msg("%s: %s then %s (%s / %s)", a.layers[i].id,
                     pd_probe_state_name(a.layers[i].state), pd_probe_state_name(b.layers[i].state),
                     a.layers[i].detail, b.layers[i].detail);
    }
}

static void test_leaves_nothing_behind(void **state)
{
    (void)state;
    int fds = count_dir("/proc/self/fd");
    int tasks = count_dir("/proc/self/task");
    assert_int_equal(probe_groups_anywhere(), 0);
    struct pd_probe p;
    pd_probe_run(&p);
    assert_int_equal(count_dir("/proc/self/fd"), fds);
    assert_int_equal(count_dir("/proc/self/task"), tasks);
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(probe_groups_anywhere(), 0);
}

static void test_fast(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pd_probe p;
    pd_probe_run(&p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    print_message("pd_probe_run took %ld ms\n", ms);
    assert_true(ms < 100);
}

/* The caller's process is not changed: no filter, no no_new_privs, same namespaces. */
static void test_caller_unchanged(void **state)
{
    (void)state;
    char before[6][256], after[6][256];
    static const char *const ns[] = {"user", "mnt", "pid", "net", "uts", "ipc"};
    for (int i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
        ssize_t n = readlink(path, before[i], sizeof before[i] - 1);
        assert_true(n > 0);
        before[i][n] = '\0';
    }
    struct pd_probe p;
    pd_probe_run(&p);
    for (int i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
        ssize_t n = readlink(path, after[i], sizeof after[i] - 1);
        assert_true(n > 0);
        after[i][n] = '\0';
        assert_string_equal(before[i], after[i]);
    }
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "NoNewPrivs:", 11) == 0 || strncmp(line, "Seccomp:", 8) == 0)
            assert_non_null(strstr(line, "\t0"));
    }
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layer_reported),  cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_leaves_nothing_behind), cmocka_unit_test(test_fast),
        cmocka_unit_test(test_caller_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
