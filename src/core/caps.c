/* caps.c - see caps.h. */
#include "core/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int pd_caps_drop_bounding(const char *who, bool must, struct pd_err *err)
{
    for (unsigned long c = 0; c <= 63; c++) {
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
            break; /* past the kernel's last capability */
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
            if (!must && errno == EPERM)
                break;
            pd_err_set(err, "%s: prctl(PR_CAPBSET_DROP, %lu): %s", who, c, strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        pd_err_set(err, "%s: prctl(PR_CAP_AMBIENT_CLEAR_ALL): %s", who, strerror(errno));
        return -1;
    }
    return 0;
}

int pd_caps_clear(const char *who, struct pd_err *err)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0) {
        pd_err_set(err, "%s: capset(all empty): %s", who, strerror(errno));
        return -1;
    }
    if (syscall(SYS_capget, &h, d) != 0) {
        pd_err_set(err, "%s: capget: %s", who, strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (d[i].effective || d[i].permitted || d[i].inheritable) {
            pd_err_set(err, "%s: capabilities still set after capset", who);
            return -1;
        }
    return 0;
}

int pd_caps_lock_securebits(const char *who, struct pd_err *err)
{
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                         SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
        pd_err_set(err, "%s: prctl(PR_SET_SECUREBITS): %s", who, strerror(errno));
        return -1;
    }
    return 0;
}
