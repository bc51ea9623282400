// Image records: cas/images/<id>/{record.json, manifest, lastused} and name
// references cas/names/<escaped name> holding an image ID. Every file is small and
// written temp-then-rename; removing an image never rewrites a shared index.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { FileLock } from './lock.js';
import { commitDir, safeReaddir } from './blobs.js';
import type { AppcImageManifest } from './manifest/appc.js';
import type { StorePaths } from './paths.js';
import type { Scratch } from './scratch.js';
import type { ImageRecord } from './sources/source.js';

export interface StoredImage {
  record: ImageRecord;
  manifest: AppcImageManifest;
  names: string[];
  /** ms since the epoch. */
  lastUsed: number;
}

const ID_RE = /^(sha256|sha512)-([0-9a-f]+)$/;

export class ImageStore {
  constructor(private readonly paths: StorePaths) {}

  has(id: string): boolean {
    return fs.existsSync(path.join(this.paths.image(id), 'record.json'));
  }

  ids(): string[] {
    return safeReaddir(this.paths.imagesDir).filter((n) => ID_RE.test(n) && this.has(n));
  }

  get(id: string): StoredImage {
    const dir = this.paths.image(id);
    let record: ImageRecord;
    let manifest: AppcImageManifest;
    try {
      record = JSON.parse(fs.readFileSync(path.join(dir, 'record.json'), 'utf8')) as ImageRecord;
      manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest'), 'utf8')) as AppcImageManifest;
    } catch (e) {
      throw new TspodError(ErrorCode.NotFound, `image ${id} is not in the store`, { cause: e });
    }
    let lastUsed = record.importTime;
    try {
      lastUsed = fs.statSync(path.join(dir, 'lastused')).mtimeMs;
    } catch {
      /* never used since import */
    }
    return { record, manifest, names: this.namesOf(id), lastUsed };
  }

  all(): StoredImage[] {
    return this.ids().map((id) => this.get(id));
  }

  /**
   * Writes a new image record. If the image is already there (another fetch won
   * the race), the existing record is kept. Names are (re)pointed at the image.
   * Writers of one record take its lock, so that a concurrent fetch of the same
   * image never replaces (or removes, as an incomplete leftover) a record that
   * another has just put in place.
   */
  async put(record: ImageRecord, manifest: AppcImageManifest, names: string[], scratch: Scratch): Promise<void> {
    const target = this.paths.image(record.id);
    if (!this.has(record.id)) {
      const lock = await FileLock.acquire(this.lockFile(record.id), 'exclusive');
      try {
        if (!this.has(record.id)) {
          const work = scratch.path('image');
          fs.mkdirSync(work, { recursive: true });
          writeSynced(path.join(work, 'manifest'), JSON.stringify(manifest, null, 2));
          writeSynced(path.join(work, 'record.json'), JSON.stringify(record, null, 2));
          // Under the lock, a directory already at `target` has no record.json: a leftover.
          commitDir(work, target);
        }
      } finally {
        lock.release();
      }
    }
    for (const name of names) this.setName(name, record.id, scratch);
  }

  /** The lock file writers of image `id`'s record take (gc removes it with the image). */
  lockFile(id: string): string {
    return path.join(this.paths.locksDir, `image-${id}.lock`);
  }

  /** Records that the image was just used (prepare, run, fetch from the store). */
  touch(id: string): void {
    const file = path.join(this.paths.image(id), 'lastused');
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      fs.writeFileSync(file, '');
    }
  }

  /** Removes the image record and every name pointing at it. Layers and blobs are gc's job. */
  remove(id: string): void {
    for (const name of this.namesOf(id)) fs.rmSync(this.nameFile(name), { force: true });
    const dir = this.paths.image(id);
    fs.rmSync(path.join(dir, 'record.json'), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // ---- names ----

  private nameFile(name: string): string {
    return path.join(this.paths.namesDir, encodeURIComponent(name));
  }

  setName(name: string, id: string, scratch: Scratch): void {
    fs.mkdirSync(this.paths.namesDir, { recursive: true });
    const tmp = scratch.path('name');
    fs.writeFileSync(tmp, `${id}\n`);
    fs.renameSync(tmp, this.nameFile(name));
  }

  /** Every (name, id) reference. */
  allNames(): Array<{ name: string; id: string }> {
    const out: Array<{ name: string; id: string }> = [];
    for (const file of safeReaddir(this.paths.namesDir)) {
      try {
        const id = fs.readFileSync(path.join(this.paths.namesDir, file), 'utf8').trim();
        out.push({ name: decodeURIComponent(file), id });
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }

  namesOf(id: string): string[] {
    return this.allNames()
      .filter((n) => n.id === id)
      .map((n) => n.name)
      .sort();
  }

  /** The image a name points at, or undefined. Exact name first (`host/repo:tag`). */
  lookupName(name: string): string | undefined {
    try {
      const id = fs.readFileSync(this.nameFile(name), 'utf8').trim();
      return this.has(id) ? id : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Resolves what a user typed to one image ID: an ID prefix (`sha256-ab…`, at
   * least two hex digits), or a name with or without tag and registry
   * (`busybox` finds `127.0.0.1:5000/busybox:latest` if that is the only match).
   */
  resolve(ref: string): string {
    const trimmed = ref.trim();
    if (!trimmed) throw new TspodError(ErrorCode.BadInput, 'image name or ID cannot be empty');
    if (/^sha(256|512)-/i.test(trimmed)) return this.resolveIdPrefix(trimmed);
    const id = this.resolveName(trimmed);
    if (id) return id;
    throw new TspodError(ErrorCode.NotFound, `image ${JSON.stringify(ref)} is not in the store`, {
      hint: 'tspod does no appc discovery: fetch it first by file, URL, docker:// or oci: (see tspod image list)',
    });
  }

  resolveIdPrefix(prefix: string): string {
    const lower = prefix.toLowerCase();
    const m = /^(sha256|sha512)-([0-9a-f]*)$/.exec(lower);
    if (!m) {
      throw new TspodError(ErrorCode.BadInput, `invalid image ID ${JSON.stringify(prefix)}`, {
        hint: 'an image ID is sha256- or sha512- followed by hex digits',
      });
    }
    if (m[2].length < 2) {
      throw new TspodError(ErrorCode.BadInput, `image ID ${JSON.stringify(prefix)} too short`, {
        hint: 'give at least two hex digits after the dash',
      });
    }
    const matches = this.ids().filter((id) => id.startsWith(lower));
    if (matches.length === 0) {
      throw new TspodError(ErrorCode.NotFound, `no image with ID ${JSON.stringify(prefix)} in the store`, {
        hint: 'see tspod image list',
      });
    }
    if (matches.length > 1) {
      throw new TspodError(ErrorCode.Ambiguous, `ambiguous image ID ${JSON.stringify(prefix)}: ${matches.length} images match`, {
        hint: 'give more hex digits',
      });
    }
    return matches[0];
  }

  /** Name lookup with Docker's shorthands; undefined when nothing matches. */
  resolveName(name: string): string | undefined {
    const candidates = nameVariants(name);
    for (const c of candidates) {
      const id = this.lookupName(c);
      if (id) return id;
    }
    // Short names: `busybox` or `busybox:1.0` match `<any registry>/busybox[:tag]`.
    const wanted = hasTag(name) ? [name] : [name, `${name}:latest`];
    const hits = new Set<string>();
    for (const ref of this.allNames()) {
      if (wanted.some((w) => ref.name.endsWith(`/${w}`)) && this.has(ref.id)) hits.add(ref.id);
    }
    if (hits.size > 1) {
      throw new TspodError(ErrorCode.Ambiguous, `image name ${JSON.stringify(name)} matches ${hits.size} images`, {
        hint: 'give the full name with registry and tag, or an image ID',
      });
    }
    if (hits.size === 1) return [...hits][0];
    // appc's rule: a name without a version matches any version of that exact
    // name (`tspod/stage1` finds `tspod/stage1:0.1.0`); the latest import wins.
    if (!hasTag(name)) {
      const versions = this.allNames().filter((r) => r.name.startsWith(`${name}:`) && this.has(r.id));
      if (versions.length) {
        return versions.map((r) => this.get(r.id)).sort((a, b) => b.record.importTime - a.record.importTime)[0].record.id;
      }
    }
    return undefined;
  }
}

function hasTag(name: string): boolean {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') || last.includes('@');
}

function nameVariants(name: string): string[] {
  return hasTag(name) ? [name] : [name, `${name}:latest`];
}

function writeSynced(file: string, data: string): void {
  const fd = fs.openSync(file, 'wx', 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
