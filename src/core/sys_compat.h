/*
 * sys_compat.h - numbers and constants that older C library headers may lack (x86_64 and every
 * architecture with the generic syscall table), in one place for every module that calls these
 * syscalls directly. Include after the system headers that would define them.
 */
#ifndef PD_CORE_SYS_COMPAT_H
#define PD_CORE_SYS_COMPAT_H

#include <sys/syscall.h>
#include <sys/wait.h> /* idtype_t */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#endif
