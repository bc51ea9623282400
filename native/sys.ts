// The system calls tspod makes through koffi, behind one interface: `kernel` is
// the real one (native/libc.ts, the koffi bindings); the unit tests (test/unit/)
// put a recording fake in its place with setSys, so that the pod state machine,
// gc and the exec of stage1 are tested without root. Every part of tspod (cmd,
// stage0, store, stage1, the rest of native/) reaches system calls only through
// sys(); this is the one module that imports native/libc.ts
// (test/unit/sys-seam.test.ts keeps it so). The constants the calls take, and
// SyscallError, the error they throw, are re-exported from here.
//
// `kernel`'s methods are libc.ts's functions themselves: a call through sys()
// costs one function call and allocates nothing more, and koffi's errno is still
// read inside libc.ts on the line right after each call.
import fs from 'node:fs';
import * as libc from './libc.js';

export { SyscallError } from './libc.js';
export { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from './libc.js';
export { MNT_DETACH } from './libc.js';
export { O_CLOEXEC, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from './libc.js';
export { S_IFBLK, S_IFCHR, S_IFIFO, makedev } from './libc.js';
export {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IP_FREEBIND,
  SO_RCVTIMEO,
  SO_REUSEADDR,
  SO_SNDTIMEO,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_IP,
  SOL_SOCKET,
} from './libc.js';

/** Every call throws a SyscallError (code 'ENOENT', errno 2, …) when the kernel refuses it, unless said otherwise. */
export interface Sys {
  // ---- Locks ----

  /** flock(2) on an open fd; with LOCK_NB, false when another open file holds a conflicting lock. */
  flock(fd: number, op: number): boolean;

  // ---- Mounts ----

  /** umount2(2). */
  umount2(target: string, flags: number): void;
  /** The text of /proc/self/mountinfo: this mount namespace's mounts. */
  mountInfo(): string;

  // ---- Processes and fds ----

  /**
   * execve(2), with fds 0-2 and `keepFds` made inheritable and SIGPIPE reset to
   * its default (Node ignores it). Returns only by throwing.
   */
  execve(file: string, argv: string[], env: Record<string, string>, keepFds?: number[]): never;
  /** Sets (on) or clears FD_CLOEXEC on fd (fcntl(2) F_GETFD, F_SETFD). */
  setCloexec(fd: number, on: boolean): void;

  // ---- Files ----

  /** openat2(2) (O_* flags, RESOLVE_* resolve); the new fd. ENOSYS before Linux 5.6. */
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  /** mknod(2): `mode` is S_IFCHR, S_IFBLK or S_IFIFO with the permission bits; `dev` from makedev. */
  mknod(path: string, mode: number, dev?: bigint): void;
  /** syncfs(2): flushes the filesystem that holds fd to disk. */
  syncfs(fd: number): void;

  // ---- Extended attributes (never following a symlink, except fsetxattr's open fd) ----

  /** lgetxattr(2): the value, or undefined when it is not set (ENODATA) or not supported (EOPNOTSUPP). */
  lgetxattr(path: string, name: string): Buffer | undefined;
  /** llistxattr(2): the names, [] when the filesystem has no xattrs (EOPNOTSUPP). */
  llistxattr(path: string): string[];
  /** Every attribute as [name, value] pairs, in the order the filesystem lists them; one cheap call when there are none. */
  lxattrs(path: string): Array<[string, Buffer]>;
  /** lsetxattr(2). */
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** fsetxattr(2) on an open file. */
  fsetxattr(fd: number, name: string, value: Buffer): void;
  /** lremovexattr(2); a missing attribute is not an error. */
  lremovexattr(path: string, name: string): void;

  // ---- Sockets (struct sockaddr and option values given as bytes) ----

  /** socket(2) with protocol 0: the new fd (pass SOCK_CLOEXEC in type). */
  socket(domain: number, type: number): number;
  /** connect(2); `what` names the peer in the error. */
  connect(fd: number, addr: Buffer, what?: string): void;
  /** bind(2); `what` names the address in the error. */
  bind(fd: number, addr: Buffer, what?: string): void;
  /** setsockopt(2). */
  setsockopt(fd: number, level: number, name: number, value: Buffer): void;
}

/** The real system calls. */
export const kernel: Sys = {
  flock: libc.flock,
  umount2: libc.umount2,
  mountInfo: () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
  execve: libc.execve,
  setCloexec: libc.setCloexec,
  openat2: libc.openat2,
  mknod: libc.mknod,
  syncfs: libc.syncfs,
  lgetxattr: libc.lgetxattr,
  llistxattr: libc.llistxattr,
  lxattrs: libc.lxattrs,
  lsetxattr: libc.lsetxattr,
  fsetxattr: libc.fsetxattr,
  lremovexattr: libc.lremovexattr,
  socket: libc.socket,
  connect: libc.connect,
  bind: libc.bind,
  setsockopt: libc.setsockopt,
};

let current: Sys = kernel;

/** The system calls in use: `kernel`, unless a test replaced them. */
export function sys(): Sys {
  return current;
}

/** Replaces the system calls (unit tests); returns what puts the previous ones back. */
export function setSys(s: Sys): () => void {
  const previous = current;
  current = s;
  return () => {
    current = previous;
  };
}
