// The system calls stage0 makes, behind one small interface: `kernel` is the
// real one (koffi, native/libc.ts); the unit tests (test/unit/) put a recording
// fake in its place with setSys, so that the pod state machine, gc and the exec
// of stage1 are tested without root. stage0 reaches them only through sys().
// Which modules still import native/libc.ts directly: docs/architecture.md,
// "Known debt".
import fs from 'node:fs';
import * as libc from './libc.js';

export { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, MNT_DETACH } from './libc.js';

export interface Sys {
  /** flock(2) on an open fd; with LOCK_NB, false when another open file holds a conflicting lock. */
  flock(fd: number, op: number): boolean;
  /** umount2(2). */
  umount2(target: string, flags: number): void;
  /** The text of /proc/self/mountinfo: this mount namespace's mounts. */
  mountInfo(): string;
  /**
   * execve(2), with fds 0-2 and `keepFds` made inheritable (native/libc.ts
   * execve). Returns only by throwing.
   */
  execve(file: string, argv: string[], env: Record<string, string>, keepFds?: number[]): never;
}

/** The real system calls. */
export const kernel: Sys = {
  flock: libc.flock,
  umount2: libc.umount2,
  mountInfo: () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
  execve: libc.execve,
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
