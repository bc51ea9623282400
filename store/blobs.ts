// Content-addressed blobs (manifests, configs, indexes) under cas/blobs/<alg>/<hex>.
// A write goes to scratch while hashing, is fsynced and verified, then renamed into
// place: a blob whose digest does not match is never visible.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode, errnoCode } from '../native/errors.js';
import { parseDigest } from './digest.js';
import type { StorePaths } from './paths.js';
import type { Scratch } from './scratch.js';
import { verifyBytes, type Expected } from './verify.js';

export class BlobStore {
  constructor(private readonly paths: StorePaths) {}

  path(digest: string): string {
    const d = parseDigest(digest);
    return this.paths.blob(d.algorithm, d.hex);
  }

  has(digest: string): boolean {
    return fs.existsSync(this.path(digest));
  }

  read(digest: string): Buffer {
    try {
      return fs.readFileSync(this.path(digest));
    } catch (e) {
      throw new TspodError(ErrorCode.NotFound, `blob ${digest} is not in the store`, { cause: e });
    }
  }

  /** Stores bytes already in memory after checking them against `expected`. */
  putBytes(bytes: Buffer, expected: Expected & { digest: string }, scratch: Scratch): void {
    verifyBytes(bytes, expected);
    const target = this.path(expected.digest);
    if (fs.existsSync(target)) return;
    const tmp = scratch.path('blob');
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    commitFile(tmp, target);
  }

  /**
   * Moves a finished, synced scratch file into place as blob `digest` (which the
   * caller computed while writing it), or drops it if that blob is already there.
   */
  commitScratchFile(tmp: string, digest: string): void {
    const target = this.path(digest);
    if (fs.existsSync(target)) {
      fs.rmSync(tmp, { force: true });
      return;
    }
    fs.chmodSync(tmp, 0o644);
    commitFile(tmp, target);
  }

  remove(digest: string): void {
    fs.rmSync(this.path(digest), { force: true });
  }

  /** Every stored digest (for gc). */
  list(): string[] {
    const out: string[] = [];
    for (const alg of safeReaddir(this.paths.blobsDir)) {
      for (const hex of safeReaddir(path.join(this.paths.blobsDir, alg))) out.push(`${alg}:${hex}`);
    }
    return out;
  }
}

/** Renames a finished temp file into its content-addressed place and syncs the directory. */
export function commitFile(tmp: string, target: string): void {
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  fs.renameSync(tmp, target);
  fsyncDir(dir);
}

/**
 * Renames a finished directory from scratch into its place in the store. A
 * leftover at the target is incomplete by the caller's rules and replaced; if
 * another process renamed the same (content-addressed) thing first, its copy wins.
 */
export function commitDir(work: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.rmSync(target, { recursive: true, force: true });
  try {
    fs.renameSync(work, target);
  } catch (e) {
    if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
  }
  fsyncDir(path.dirname(target));
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
