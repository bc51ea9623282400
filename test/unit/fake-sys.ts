// A recording fake of native/sys.ts for the unit tests: it keeps flock's rules
// (locks belong to an open file, conflicting locks are refused with LOCK_NB),
// lets a test say that "another process" holds a lock, keeps a mount table that
// umount2 edits, and records every call. execve records its arguments and
// throws ExecCalled instead of replacing the process.
import fs from 'node:fs';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, type Sys } from '../../native/sys.js';
import { SyscallError } from '../../native/libc.js';

export type Call =
  | { call: 'flock'; fd: number; op: string; granted: boolean }
  | { call: 'umount2'; target: string; flags: number }
  | { call: 'mountInfo' }
  | { call: 'execve'; file: string; argv: string[]; env: Record<string, string>; keepFds: number[] };

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

type Mode = 'sh' | 'ex';
/** The holder that stands for another process. */
const ELSEWHERE = -1;

export class FakeSys implements Sys {
  readonly calls: Call[] = [];
  /** Mount points of the fake mount namespace, in mount order. */
  mounts: string[] = [];
  /** umount2 fails with this errno for these targets. */
  readonly umountErrors = new Map<string, number>();
  /** Per file (dev:ino): which fds hold a lock on it, and how. */
  private readonly locks = new Map<string, Map<number, Mode>>();

  /** "Another process" takes a lock on `file` (a pod directory), as a running pod's helper holds it. */
  holdElsewhere(file: string, mode: Mode = 'ex'): void {
    this.holders(key(fs.statSync(file))).set(ELSEWHERE, mode);
  }

  /** The other process lets go (it exited). */
  releaseElsewhere(file: string): void {
    this.holders(key(fs.statSync(file))).delete(ELSEWHERE);
  }

  /** The calls of one kind. */
  callsOf<K extends Call['call']>(call: K): Array<Extract<Call, { call: K }>> {
    return this.calls.filter((c): c is Extract<Call, { call: K }> => c.call === call);
  }

  flock(fd: number, op: number): boolean {
    const st = fs.fstatSync(fd); // EBADF, as the kernel, for a closed fd
    const holders = this.holders(key(st));
    let granted = true;
    if (op & LOCK_UN) {
      holders.delete(fd);
    } else {
      const want: Mode = op & LOCK_EX ? 'ex' : 'sh';
      const conflict = [...holders].some(([holder, mode]) => holder !== fd && (want === 'ex' || mode === 'ex'));
      if (conflict && !(op & LOCK_NB)) throw new Error(`FakeSys: flock(${fd}) would wait forever (the lock is held elsewhere)`);
      granted = !conflict;
      if (granted) holders.set(fd, want);
    }
    this.calls.push({ call: 'flock', fd, op: opName(op), granted });
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

  /** The holders of one file, forgetting fds closed since (the kernel drops their locks). */
  private holders(k: string): Map<number, Mode> {
    let h = this.locks.get(k);
    if (!h) this.locks.set(k, (h = new Map()));
    for (const fd of h.keys()) {
      if (fd === ELSEWHERE) continue;
      let open = false;
      try {
        open = key(fs.fstatSync(fd)) === k;
      } catch {
        /* closed */
      }
      if (!open) h.delete(fd);
    }
    return h;
  }
}

function key(st: fs.Stats): string {
  return `${st.dev}:${st.ino}`;
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
