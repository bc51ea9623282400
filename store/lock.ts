// File locks with flock(2): the kernel drops them when the holder dies, so a
// SIGKILLed tspod never leaves a stale lock. Waiting polls with LOCK_NB, so that
// the event loop keeps running while a lock is held elsewhere.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, sys } from '../native/sys.js';

export class FileLock {
  private constructor(readonly file: string, readonly fd: number) {}

  /** Opens (creating) `file` and waits until the lock is granted. */
  static async acquire(file: string, mode: 'shared' | 'exclusive', pollMs = 20): Promise<FileLock> {
    const lock = FileLock.open(file);
    const op = (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB;
    while (!sys().flock(lock.fd, op)) await sleep(pollMs);
    return lock;
  }

  /** Tries once; returns undefined if someone else holds a conflicting lock. */
  static tryAcquire(file: string, mode: 'shared' | 'exclusive'): FileLock | undefined {
    const lock = FileLock.open(file);
    if (sys().flock(lock.fd, (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB)) return lock;
    lock.close();
    return undefined;
  }

  private static open(file: string): FileLock {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return new FileLock(file, fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT, 0o600));
  }

  release(): void {
    try {
      sys().flock(this.fd, LOCK_UN);
    } finally {
      this.close();
    }
  }

  private close(): void {
    fs.closeSync(this.fd);
  }
}
