// Scratch space in the store. Each process works in its own directory
// cas/tmp/<pid>-<random>/ whose `.owner` file it keeps flocked; a directory whose
// owner lock can be taken belongs to a dead process and is removed. Nothing in
// cas/tmp is ever trusted: finished work is renamed out of it.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FileLock } from './lock.js';

export class Scratch {
  private counter = 0;
  private constructor(readonly dir: string, private readonly owner: FileLock) {}

  static open(tmpDir: string): Scratch {
    fs.mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    const dir = path.join(tmpDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
    fs.mkdirSync(dir, { mode: 0o700 });
    const owner = FileLock.tryAcquire(path.join(dir, '.owner'), 'exclusive');
    if (!owner) throw new Error(`cannot lock new scratch directory ${dir}`);
    return new Scratch(dir, owner);
  }

  /** A fresh path inside this scratch directory (not created). */
  path(prefix: string): string {
    return path.join(this.dir, `${prefix}-${++this.counter}`);
  }

  /** Removes the scratch directory and everything left in it. */
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.owner.release();
  }

  /** Removes scratch directories whose owning process is gone. */
  static sweepAbandoned(tmpDir: string): void {
    let entries: string[];
    try {
      entries = fs.readdirSync(tmpDir);
    } catch {
      return;
    }
    for (const name of entries) {
      const dir = path.join(tmpDir, name);
      // A directory made in the last seconds may not have locked its owner file yet.
      try {
        if (Date.now() - fs.lstatSync(dir).ctimeMs < 5000) continue;
      } catch {
        continue;
      }
      const lock = FileLock.tryAcquire(path.join(dir, '.owner'), 'exclusive');
      if (!lock) continue;
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } finally {
        lock.release();
      }
    }
  }
}
