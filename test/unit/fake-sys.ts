// The unit tests' native/sys.ts: flock is the kernel's (it needs no privilege),
// recorded; "another process" holding a pod's lock (holdElsewhere) is a real
// lock on an open file of the test's own, which conflicts exactly as another
// process's would and follows the pod through renames. The mount table is a
// list that umount2 edits; execve records its arguments and throws ExecCalled
// instead of replacing the process; setCloexec is the kernel's, on the test's
// own fds. These calls are recorded. The calls that only read the test's own
// files and need no privilege (openat2, the xattr reads) are the kernel's,
// unrecorded; the rest (mknod, syncfs, the xattr writes, sockets) no unit test
// makes: they throw NotFaked, so that a test that starts making one says so.
import fs from 'node:fs';
import { kernel, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, SyscallError, type Sys } from '../../native/sys.js';

export type Call =
  | { call: 'flock'; fd: number; op: string; granted: boolean }
  | { call: 'umount2'; target: string; flags: number }
  | { call: 'mountInfo' }
  | { call: 'execve'; file: string; argv: string[]; env: Record<string, string>; keepFds: number[] }
  | { call: 'setCloexec'; fd: number; on: boolean };

/** What FakeSys.execve throws: the exec that would have happened. */
export class ExecCalled extends Error {
  constructor(
    readonly file: string,
    readonly argv: string[],
    readonly env: Record<string, string>,
    readonly keepFds: number[],
  ) {
    super(`execve ${file}`);
  }
}

/** What FakeSys throws for a system call it does not fake. */
export class NotFaked extends Error {
  constructor(call: string) {
    super(`FakeSys: ${call} is not faked (no unit test made it before): fake it in test/unit/fake-sys.ts`);
  }
}

type Mode = 'sh' | 'ex';

export class FakeSys implements Sys {
  readonly calls: Call[] = [];
  /** Mount points of the fake mount namespace, in mount order. */
  mounts: string[] = [];
  /** umount2 fails with this errno for these targets. */
  readonly umountErrors = new Map<string, number>();
  /** The open files that stand for other processes' locks, by the path they were taken on. */
  private readonly elsewhere = new Map<string, number>();

  /** "Another process" takes a lock on `file` (a pod directory), as a running pod's helper holds it. */
  holdElsewhere(file: string, mode: Mode = 'ex'): void {
    this.releaseElsewhere(file);
    const fd = fs.openSync(file, fs.constants.O_RDONLY);
    if (!kernel.flock(fd, (mode === 'ex' ? LOCK_EX : LOCK_SH) | LOCK_NB)) {
      fs.closeSync(fd);
      throw new Error(`FakeSys: ${file} is locked already`);
    }
    this.elsewhere.set(file, fd);
  }

  /** The other process lets go (it exited). */
  releaseElsewhere(file: string): void {
    const fd = this.elsewhere.get(file);
    if (fd === undefined) return;
    fs.closeSync(fd);
    this.elsewhere.delete(file);
  }

  /** Lets go of every lock held "elsewhere" (after each test). */
  dispose(): void {
    for (const file of [...this.elsewhere.keys()]) this.releaseElsewhere(file);
  }

  /** The calls of one kind. */
  callsOf<K extends Call['call']>(call: K): Array<Extract<Call, { call: K }>> {
    return this.calls.filter((c): c is Extract<Call, { call: K }> => c.call === call);
  }

  flock(fd: number, op: number): boolean {
    // A lock that is not free would be waited for: forever, in a test.
    const granted = kernel.flock(fd, op & LOCK_UN ? op : op | LOCK_NB);
    this.calls.push({ call: 'flock', fd, op: opName(op), granted });
    if (!granted && !(op & LOCK_NB)) throw new Error(`FakeSys: flock(${fd}, ${opName(op)}) would wait forever (the lock is held elsewhere)`);
    return granted;
  }

  umount2(target: string, flags: number): void {
    this.calls.push({ call: 'umount2', target, flags });
    const errno = this.umountErrors.get(target);
    if (errno !== undefined) throw new SyscallError('umount2', errno, target);
    const at = this.mounts.lastIndexOf(target);
    if (at < 0) throw new SyscallError('umount2', 22 /* EINVAL: not a mount point */, target);
    this.mounts.splice(at, 1);
  }

  /** The mount table in mountinfo's format, mount points escaped as the kernel does (\040 for a space). */
  mountInfo(): string {
    this.calls.push({ call: 'mountInfo' });
    const escape = (p: string) => p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
    const lines = ['22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw'];
    this.mounts.forEach((m, i) => lines.push(`${100 + i} 22 0:${40 + i} / ${escape(m)} rw,nosuid shared:${i + 2} - tmpfs tmpfs rw`));
    return `${lines.join('\n')}\n`;
  }

  execve(file: string, argv: string[], env: Record<string, string>, keepFds: number[] = []): never {
    this.calls.push({ call: 'execve', file, argv, env, keepFds });
    throw new ExecCalled(file, argv, env, keepFds);
  }

  setCloexec(fd: number, on: boolean): void {
    this.calls.push({ call: 'setCloexec', fd, on });
    kernel.setCloexec(fd, on);
  }

  // The kernel's: they read the test's own files and need no privilege.
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
    return kernel.openat2(dirfd, path, flags, mode, resolve);
  }

  lgetxattr(path: string, name: string): Buffer | undefined {
    return kernel.lgetxattr(path, name);
  }

  llistxattr(path: string): string[] {
    return kernel.llistxattr(path);
  }

  lxattrs(path: string): Array<[string, Buffer]> {
    return kernel.lxattrs(path);
  }

  // Not faked.
  mknod(): void {
    throw new NotFaked('mknod');
  }

  syncfs(): void {
    throw new NotFaked('syncfs');
  }

  lsetxattr(): void {
    throw new NotFaked('lsetxattr');
  }

  fsetxattr(): void {
    throw new NotFaked('fsetxattr');
  }

  lremovexattr(): void {
    throw new NotFaked('lremovexattr');
  }

  socket(): number {
    throw new NotFaked('socket');
  }

  connect(): void {
    throw new NotFaked('connect');
  }

  bind(): void {
    throw new NotFaked('bind');
  }

  setsockopt(): void {
    throw new NotFaked('setsockopt');
  }
}

function opName(op: number): string {
  const names: Array<[number, string]> = [
    [LOCK_SH, 'LOCK_SH'],
    [LOCK_EX, 'LOCK_EX'],
    [LOCK_UN, 'LOCK_UN'],
    [LOCK_NB, 'LOCK_NB'],
  ];
  return names
    .filter(([bit]) => op & bit)
    .map(([, n]) => n)
    .join('|');
}
