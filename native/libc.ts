// Thin koffi bindings to the libc calls Node lacks. Only thread-independent
// syscalls live here (docs/architecture.md, "The stages"): never unshare, setns or fork from Node.
// koffi.errno() is read on the line right after each call.
// Only native/sys.ts imports this module: everything else calls sys() (the seam
// the unit tests replace; test/unit/sys-seam.test.ts enforces it).
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;

interface Libc {
  flock: Fn;
  mknod: Fn;
  lsetxattr: Fn;
  lgetxattr: Fn;
  llistxattr: Fn;
  syncfs: Fn;
  mount: Fn;
  umount2: Fn;
  fcntl: Fn;
  fsetxattr: Fn;
  lremovexattr: Fn;
  execve: Fn;
  signal: Fn;
  syscall: Fn;
  socket: Fn;
  connect: Fn;
  bind: Fn;
  setsockopt: Fn;
  koffi: Koffi;
}

let libc: Libc | undefined;

function loadKoffi(): Koffi {
  // A SEA's require sees only built-ins: stage1 sets TSPOD_KOFFI_NODE to the
  // koffi.node file and we load it with process.dlopen (see stage1/).
  const nodeFile = process.env.TSPOD_KOFFI_NODE;
  if (nodeFile) {
    const mod = { exports: {} as Koffi };
    process.dlopen(mod, nodeFile);
    return mod.exports;
  }
  const require = createRequire(import.meta.url);
  return require('koffi') as Koffi;
}

function lib(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const c = koffi.load('libc.so.6');
  libc = {
    koffi,
    flock: c.func('int flock(int fd, int op)') as Fn,
    mknod: c.func('int mknod(const char *path, uint32_t mode, uint64_t dev)') as Fn,
    lsetxattr: c.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as Fn,
    lgetxattr: c.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)') as Fn,
    llistxattr: c.func('intptr_t llistxattr(const char *path, _Out_ uint8_t *list, size_t size)') as Fn,
    syncfs: c.func('int syncfs(int fd)') as Fn,
    mount: c.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as Fn,
    umount2: c.func('int umount2(const char *target, int flags)') as Fn,
    fcntl: c.func('int fcntl(int fd, int cmd, int arg)') as Fn,
    execve: c.func('int execve(const char *path, const char **argv, const char **envp)') as Fn,
    signal: c.func('void *signal(int sig, void *handler)') as unknown as Fn,
    fsetxattr: c.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)') as Fn,
    lremovexattr: c.func('int lremovexattr(const char *path, const char *name)') as Fn,
    syscall: c.func('long syscall(long number, ...)') as Fn,
    socket: c.func('int socket(int domain, int type, int protocol)') as Fn,
    connect: c.func('int connect(int fd, const void *addr, uint32_t len)') as Fn,
    bind: c.func('int bind(int fd, const void *addr, uint32_t len)') as Fn,
    setsockopt: c.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as Fn,
  };
  return libc;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 6: 'ENXIO', 9: 'EBADF', 11: 'EAGAIN', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST',
  18: 'EXDEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 28: 'ENOSPC', 30: 'EROFS', 36: 'ENAMETOOLONG', 38: 'ENOSYS',
  40: 'ELOOP', 61: 'ENODATA', 95: 'EOPNOTSUPP', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
};

/** An error shaped like Node's fs errors (code = 'ENOENT', errno = 2). */
export class SyscallError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  constructor(syscall: string, errno: number, path?: string) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${syscall}${path ? ` ${path}` : ''}: ${code}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

function check(rc: number, errno: number, syscall: string, path?: string): number {
  if (rc < 0) throw new SyscallError(syscall, errno, path);
  return rc;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** flock(2). With LOCK_NB, returns false when the lock is held elsewhere. */
export function flock(fd: number, op: number): boolean {
  const l = lib();
  const rc = l.flock(fd, op);
  const errno = l.koffi.errno();
  if (rc === 0) return true;
  if (errno === 11 /* EWOULDBLOCK */ && op & LOCK_NB) return false;
  throw new SyscallError('flock', errno);
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  const l = lib();
  const rc = l.mknod(path, mode, dev);
  const errno = l.koffi.errno();
  check(rc, errno, 'mknod', path);
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const l = lib();
  const rc = l.lsetxattr(path, name, value, value.length, 0);
  const errno = l.koffi.errno();
  check(rc, errno, 'lsetxattr', path);
}

/** The value of one extended attribute, or undefined if it is not set. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const l = lib();
  const buf = Buffer.alloc(65536);
  const rc = l.lgetxattr(path, name, buf, buf.length);
  const errno = l.koffi.errno();
  if (rc < 0 && (errno === 61 /* ENODATA */ || errno === 95 /* EOPNOTSUPP */)) return undefined;
  check(rc, errno, 'lgetxattr', path);
  return buf.subarray(0, rc);
}

export function llistxattr(path: string): string[] {
  const l = lib();
  const buf = Buffer.alloc(65536);
  const rc = l.llistxattr(path, buf, buf.length);
  const errno = l.koffi.errno();
  if (rc < 0 && errno === 95) return [];
  check(rc, errno, 'llistxattr', path);
  return buf.subarray(0, rc).toString('latin1').split('\0').filter((s) => s.length > 0);
}

/** fsetxattr(2): sets an extended attribute on an open file. */
export function fsetxattr(fd: number, name: string, value: Buffer): void {
  const l = lib();
  const rc = l.fsetxattr(fd, name, value, value.length, 0);
  const errno = l.koffi.errno();
  check(rc, errno, 'fsetxattr');
}

/** lremovexattr(2); a missing attribute is not an error. */
export function lremovexattr(path: string, name: string): void {
  const l = lib();
  const rc = l.lremovexattr(path, name);
  const errno = l.koffi.errno();
  if (rc < 0 && errno === 61 /* ENODATA */) return;
  check(rc, errno, 'lremovexattr', path);
}

/**
 * Every extended attribute of `path` (not following a symlink), as [name, value]
 * pairs in the order the filesystem lists them. Asks for the list's size first, so
 * the common case (no attributes) costs one cheap call.
 */
export function lxattrs(path: string): Array<[string, Buffer]> {
  const l = lib();
  const need = l.llistxattr(path, null, 0);
  const errno = l.koffi.errno();
  if (need < 0 && errno === 95 /* EOPNOTSUPP */) return [];
  check(need, errno, 'llistxattr', path);
  if (need === 0) return [];
  const out: Array<[string, Buffer]> = [];
  for (const name of llistxattr(path)) {
    const value = lgetxattr(path, name);
    if (value !== undefined) out.push([name, Buffer.from(value)]);
  }
  return out;
}

/** Flushes the filesystem that holds fd to disk (syncfs(2)). */
export function syncfs(fd: number): void {
  const l = lib();
  const rc = l.syncfs(fd);
  const errno = l.koffi.errno();
  check(rc, errno, 'syncfs');
}

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MNT_DETACH = 2;

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
  const l = lib();
  const rc = l.mount(source, target, fstype, flags, data);
  const errno = l.koffi.errno();
  check(rc, errno, 'mount', target);
}

export function umount2(target: string, flags: number): void {
  const l = lib();
  const rc = l.umount2(target, flags);
  const errno = l.koffi.errno();
  check(rc, errno, 'umount2', target);
}

// openat2(2) (Linux 5.6; glibc 2.36 has no wrapper): the same number on every
// architecture that uses the generic syscall table, x86_64 included.
const SYS_openat2 = 437;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

/** openat2(2) with struct open_how { u64 flags; u64 mode; u64 resolve }; returns the new fd. */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const l = lib();
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const rc = Number(l.syscall(SYS_openat2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', how.length));
  const errno = l.koffi.errno();
  return check(rc, errno, 'openat2', path);
}

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/** Sets or clears FD_CLOEXEC on fd. */
export function setCloexec(fd: number, on: boolean): void {
  const l = lib();
  const cur = l.fcntl(fd, F_GETFD, 0);
  const errno = l.koffi.errno();
  check(cur, errno, 'fcntl');
  const next = on ? cur | FD_CLOEXEC : cur & ~FD_CLOEXEC;
  const rc = l.fcntl(fd, F_SETFD, next);
  const errno2 = l.koffi.errno();
  check(rc, errno2, 'fcntl');
}

const SIGPIPE = 13;

/**
 * Replaces this process with `file` (Node 20 has no exec of its own). Node marks
 * fds 0-2 close-on-exec and ignores SIGPIPE: both are reset here; `keepFds`
 * (e.g. a lock fd) are made inheritable too. Returns only on failure.
 */
export function execve(file: string, argv: string[], env: Record<string, string>, keepFds: number[] = []): never {
  const l = lib();
  for (const fd of [0, 1, 2, ...keepFds]) setCloexec(fd, false);
  l.signal(SIGPIPE, null);
  const envp = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const rc = l.execve(file, [...argv, null], [...envp, null]);
  const errno = l.koffi.errno();
  throw new SyscallError('execve', errno, file);
  void rc;
}

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SO_REUSEADDR = 2;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
export const IP_FREEBIND = 15;

/** socket(2): a new socket fd (pass SOCK_CLOEXEC in type). */
export function socket(domain: number, type: number): number {
  const l = lib();
  const rc = l.socket(domain, type, 0);
  const errno = l.koffi.errno();
  return check(rc, errno, 'socket');
}

/** connect(2) to a struct sockaddr given as bytes. */
export function connect(fd: number, addr: Buffer, what?: string): void {
  const l = lib();
  const rc = l.connect(fd, addr, addr.length);
  const errno = l.koffi.errno();
  check(rc, errno, 'connect', what);
}

/** bind(2) to a struct sockaddr given as bytes. */
export function bind(fd: number, addr: Buffer, what?: string): void {
  const l = lib();
  const rc = l.bind(fd, addr, addr.length);
  const errno = l.koffi.errno();
  check(rc, errno, 'bind', what);
}

/** setsockopt(2) with a raw option value. */
export function setsockopt(fd: number, level: number, name: number, value: Buffer): void {
  const l = lib();
  const rc = l.setsockopt(fd, level, name, value, value.length);
  const errno = l.koffi.errno();
  check(rc, errno, 'setsockopt');
}
