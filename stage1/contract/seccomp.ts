// appc's seccomp isolators (spec/ace.md: os/linux/seccomp-retain-set and
// os/linux/seccomp-remove-set, each {"set": [...], "errno": "ENOSYS"?}), rkt's
// wildcard groups, and tspod's default filter. Shared by stage0 (validation at
// prepare) and stage1 (the filter it gives the helper: plan app-seccomp, enter
// --seccomp). The helper compiles the filter with libseccomp.
import os from 'node:os';
import type { AppcIsolator } from './appc.js';

export const SECCOMP_RETAIN = 'os/linux/seccomp-retain-set';
export const SECCOMP_REMOVE = 'os/linux/seccomp-remove-set';

/** Docker's default profile as rkt's groups list it: syscalls that are denied. */
const DEFAULT_BLACKLIST = [
  'acct', 'add_key', 'adjtimex', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
  'finit_module', 'get_kernel_syms', 'get_mempolicy', 'init_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load',
  'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'mount', 'move_pages', 'name_to_handle_at', 'nfsservctl',
  'open_by_handle_at', 'perf_event_open', 'pivot_root', 'process_vm_readv', 'process_vm_writev', 'ptrace',
  'query_module', 'quotactl', 'reboot', 'request_key', 'set_mempolicy', 'setns', 'settimeofday', 'stime', 'swapon',
  'swapoff', 'sysfs', '_sysctl', 'umount', 'umount2', 'unshare', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
];

/** ... and the syscalls it allows (the other side of the same profile). */
const DEFAULT_WHITELIST = [
  'accept', 'accept4', 'access', 'alarm', 'arch_prctl', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown',
  'chown32', 'chroot', 'clock_getres', 'clock_gettime', 'clock_nanosleep', 'clone', 'close', 'connect',
  'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old',
  'epoll_pwait', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group',
  'faccessat', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown',
  'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr',
  'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex',
  'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid',
  'getgid32', 'getgroups', 'getgroups32', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid',
  'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'get_robust_list',
  'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday', 'getuid',
  'getuid32', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel',
  'ioctl', 'io_destroy', 'io_getevents', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit', 'ipc', 'kill', 'lchown',
  'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr', '_llseek', 'lremovexattr', 'lseek',
  'lsetxattr', 'lstat', 'lstat64', 'madvise', 'memfd_create', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'modify_ldt', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open',
  'mq_timedreceive', 'mq_timedsend', 'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync',
  'munlock', 'munlockall', 'munmap', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat', 'pause',
  'personality', 'pipe', 'pipe2', 'poll', 'ppoll', 'prctl', 'pread64', 'preadv', 'prlimit64', 'pselect6', 'pwrite64',
  'pwritev', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmsg',
  'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir', 'rt_sigaction',
  'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait',
  'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_get_priority_max',
  'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval', 'sched_setaffinity', 'sched_setattr',
  'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop',
  'semtimedop', 'send', 'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg', 'sendto', 'setfsgid', 'setfsgid32',
  'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32', 'setitimer', 'setpgid', 'setpriority',
  'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid', 'setreuid32',
  'setrlimit', 'set_robust_list', 'setsid', 'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setuid32',
  'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigreturn',
  'socket', 'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'symlink', 'symlinkat',
  'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'syslog', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete',
  'timerfd_create', 'timerfd_gettime', 'timerfd_settime', 'timer_getoverrun', 'timer_gettime', 'timer_settime',
  'times', 'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
];

/** rkt adds these on arm and arm64. */
const ARM_WHITELIST = ['arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'set_tls', 'sync_file_range2'];

/** rkt's named groups (`@scope/name`), each a list of syscall names. */
export const SECCOMP_GROUPS: Record<string, readonly string[]> = {
  '@docker/default-blacklist': DEFAULT_BLACKLIST,
  '@docker/default-whitelist': DEFAULT_WHITELIST,
  '@rkt/default-blacklist': DEFAULT_BLACKLIST,
  '@rkt/default-whitelist': [...DEFAULT_WHITELIST, ...(os.arch() === 'arm' || os.arch() === 'arm64' ? ARM_WHITELIST : [])],
};

/** appc's two wildcards. */
export const APPC_ALL = '@appc.io/all';
export const APPC_EMPTY = '@appc.io/empty';

export type SeccompMode = 'remove' | 'retain';

/** The filter an app gets: its syscalls are the groups expanded. */
export interface SeccompFilter {
  mode: SeccompMode;
  /** The errno name a denied syscall returns, and its number on this machine. */
  errno: string;
  errnoNumber: number;
  syscalls: string[];
}

/** tspod's default filter: rkt's default blacklist (docker's), denied with EPERM. */
export const DEFAULT_SECCOMP = { mode: 'remove' as SeccompMode, set: ['@rkt/default-blacklist'], errno: 'EPERM' };

/** `ENOSYS` → its number (Linux's, from Node), undefined if it is no errno name. */
export function errnoNumber(name: string): number | undefined {
  const table = os.constants.errno as Record<string, number>;
  if (!/^E[A-Z0-9]+$/.test(name) || !Object.prototype.hasOwnProperty.call(table, name)) return undefined;
  const n = table[name];
  return Number.isInteger(n) && n > 0 && n < 4096 ? n : undefined;
}

/** A plain syscall name (what libseccomp takes), as opposed to a `@group`. */
export function isSyscallName(s: string): boolean {
  return /^[a-z_][a-z0-9_]{0,63}$/.test(s);
}

/** The seccomp isolator of an app, checked: undefined when it has none. Throws an Error (message without the app's name). */
export function seccompIsolator(isolators: readonly AppcIsolator[] | undefined): { mode: SeccompMode; set: string[]; errno?: string } | undefined {
  const found = (isolators ?? []).filter((i) => i?.name === SECCOMP_RETAIN || i?.name === SECCOMP_REMOVE);
  if (!found.length) return undefined;
  if (found.length > 1) throw new Error(`only one of ${SECCOMP_RETAIN} and ${SECCOMP_REMOVE} may be given, once`);
  const iso = found[0];
  const v = iso.value as { set?: unknown; errno?: unknown } | null;
  const set = v?.set;
  if (!v || typeof v !== 'object' || !Array.isArray(set) || !set.length || !set.every((s) => typeof s === 'string')) {
    throw new Error(`isolator ${iso.name}: the value must be {"set": ["SYSCALL" or "@GROUP", ...], "errno": "ENAME"?} with at least one entry`);
  }
  for (const s of set as string[]) {
    if (s.startsWith('@')) {
      if (s !== APPC_ALL && s !== APPC_EMPTY && !SECCOMP_GROUPS[s]) {
        throw new Error(`isolator ${iso.name}: unknown syscall group ${JSON.stringify(s)} (known: ${[APPC_ALL, APPC_EMPTY, ...Object.keys(SECCOMP_GROUPS)].join(', ')})`);
      }
    } else if (!isSyscallName(s)) throw new Error(`isolator ${iso.name}: ${JSON.stringify(s)} is not a syscall name`);
  }
  let errno: string | undefined;
  if (v.errno !== undefined && v.errno !== '') {
    if (typeof v.errno !== 'string' || errnoNumber(v.errno) === undefined) throw new Error(`isolator ${iso.name}: unknown errno ${JSON.stringify(v.errno)}`);
    errno = v.errno;
  }
  return { mode: iso.name === SECCOMP_RETAIN ? 'retain' : 'remove', set: set as string[], errno };
}

/** The plain syscall names (not groups) of an app's seccomp isolator: what prepare checks against the machine. */
export function isolatorSyscallNames(isolators: readonly AppcIsolator[] | undefined): string[] {
  return (seccompIsolator(isolators)?.set ?? []).filter((s) => !s.startsWith('@'));
}

/**
 * The filter of an app's isolators (checked at prepare), or the default one;
 * undefined for no filter: `--insecure-options=seccomp`, or a retain-set with
 * @appc.io/all. A remove-set with only @appc.io/empty is the default filter (as
 * in rkt, where it opts in to the default). Without an errno, denied syscalls
 * return EPERM.
 */
export function seccompFilter(isolators: readonly AppcIsolator[] | undefined, disabled: boolean): SeccompFilter | undefined {
  if (disabled) return undefined;
  let iso = seccompIsolator(isolators) ?? DEFAULT_SECCOMP;
  if (iso.mode === 'retain' && iso.set.includes(APPC_ALL)) return undefined;
  if (iso.mode === 'remove' && iso.set.every((s) => s === APPC_EMPTY)) iso = { ...DEFAULT_SECCOMP, errno: iso.errno ?? DEFAULT_SECCOMP.errno };
  const errno = iso.errno ?? 'EPERM';
  let syscalls: string[] = [];
  let mode = iso.mode;
  if (mode === 'remove' && iso.set.includes(APPC_ALL)) {
    mode = 'retain'; // nothing is left: only what the helper always allows
  } else {
    for (const s of iso.set) {
      if (s === APPC_EMPTY) continue;
      syscalls.push(...(SECCOMP_GROUPS[s] ?? [s]));
    }
  }
  syscalls = [...new Set(syscalls)].sort();
  return { mode, errno, errnoNumber: errnoNumber(errno) ?? 1, syscalls };
}

/**
 * rkt's `--seccomp mode=remove|retain[,errno=ENAME],SYSCALL|@GROUP,...` as the
 * isolator it stands for. Throws an Error for a malformed value.
 */
export function seccompFlagIsolator(value: string): AppcIsolator {
  const items = value.split(',').map((s) => s.trim());
  const m = /^mode=(.*)$/.exec(items[0] ?? '');
  if (!m) throw new Error(`${JSON.stringify(value)} must start with mode=remove or mode=retain`);
  if (m[1] !== 'remove' && m[1] !== 'retain') throw new Error(`unknown mode ${JSON.stringify(m[1])} (want remove or retain)`);
  let rest = items.slice(1);
  const out: { set: string[]; errno?: string } = { set: [] };
  if (rest[0]?.startsWith('errno=')) {
    const e = rest[0].slice(6);
    if (errnoNumber(e) === undefined) throw new Error(`unknown errno ${JSON.stringify(e)} (want a name like EPERM or ENOSYS)`);
    out.errno = e;
    rest = rest.slice(1);
  }
  if (!rest.length) throw new Error(`no syscall given in ${JSON.stringify(value)}`);
  for (const s of rest) {
    if (!s) throw new Error(`an empty syscall name in ${JSON.stringify(value)}`);
    if (s.includes('=')) throw new Error(`${JSON.stringify(s)}: only mode= (first) and errno= (second) take a value`);
    out.set.push(s);
  }
  const iso: AppcIsolator = { name: m[1] === 'retain' ? SECCOMP_RETAIN : SECCOMP_REMOVE, value: out };
  seccompIsolator([iso]); // the same checks as an image's isolator
  return iso;
}
