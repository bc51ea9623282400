// Image records: cas/images/<id>/{record.json, manifest, lastused} and name
// references, one small file per name holding an image ID. Every file is small and
// written temp-then-rename; removing an image never rewrites a shared index.
//
// Names come in two kinds, kept apart (store/paths.ts):
//  - docker names (`registry/repository:tag`, cas/names/), recorded only by
//    docker://, docker-archive and OCI layout/archive fetches. A docker://
//    reference is looked up among these alone (lookupName), so an image can claim
//    a registry's name only by coming from a source that speaks for it.
//  - appc names (`name:version`, cas/appc-names/), recorded for ACIs from their
//    own manifests, which anyone can write: found only by name lookups without a
//    transport (resolveName), with appc's rules (the exact name and version; a
//    name without a version finds the latest import of any version).
// A store made before the split may hold an ACI's name among the docker names: a
// docker name that points at an ACI is treated as an appc name.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { FileLock } from './lock.js';
import { commitDir, safeReaddir } from './blobs.js';
import type { AppcImageManifest } from './manifest/appc.js';
import { PRIVATE_DIR_MODE, type StorePaths } from './paths.js';
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

/** docker: registry names (docker://, docker-archive, OCI sources); appc: an ACI's own name. */
export type NameKind = 'docker' | 'appc';

export interface NameRef {
  name: string;
  id: string;
  kind: NameKind;
}

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
  async put(record: ImageRecord, manifest: AppcImageManifest, names: string[], scratch: Scratch, kind: NameKind): Promise<void> {
    const target = this.paths.image(record.id);
    if (!this.has(record.id)) {
      const lock = await FileLock.acquire(this.lockFile(record.id), 'exclusive');
      try {
        if (!this.has(record.id)) {
          const work = scratch.path('image');
          fs.mkdirSync(work, { recursive: true, mode: PRIVATE_DIR_MODE });
          writeSynced(path.join(work, 'manifest'), JSON.stringify(manifest, null, 2));
          writeSynced(path.join(work, 'record.json'), JSON.stringify(record, null, 2));
          // Under the lock, a directory already at `target` has no record.json: a leftover.
          commitDir(work, target);
        }
      } finally {
        lock.release();
      }
    }
    for (const name of names) this.setName(name, record.id, scratch, kind);
  }

  /**
   * Rewrites the record of an image that is in the store (under its lock, temp
   * then rename): for an image imported by an older tspod, fetched again.
   */
  async updateRecord(id: string, change: (r: ImageRecord) => ImageRecord): Promise<void> {
    const lock = await FileLock.acquire(this.lockFile(id), 'exclusive');
    try {
      if (!this.has(id)) return;
      const file = path.join(this.paths.image(id), 'record.json');
      const next = change(JSON.parse(fs.readFileSync(file, 'utf8')) as ImageRecord);
      const tmp = `${file}.${process.pid}.tmp`;
      fs.rmSync(tmp, { force: true });
      writeSynced(tmp, JSON.stringify(next, null, 2));
      fs.renameSync(tmp, file);
    } finally {
      lock.release();
    }
  }

  /**
   * appc's store lookup by name and labels (rkt's GetACI): the ACIs named `name`
   * that have every label in `labels` with the same value; the most recent
   * import first.
   */
  findAppc(name: string, labels: ReadonlyMap<string, string>): string[] {
    const hits: Array<{ id: string; importTime: number }> = [];
    for (const id of this.ids()) {
      let record: ImageRecord;
      let manifest: AppcImageManifest;
      try {
        record = JSON.parse(fs.readFileSync(path.join(this.paths.image(id), 'record.json'), 'utf8')) as ImageRecord;
        if (record.kind !== 'aci') continue;
        manifest = JSON.parse(fs.readFileSync(path.join(this.paths.image(id), 'manifest'), 'utf8')) as AppcImageManifest;
      } catch {
        continue; // being removed
      }
      if (manifest.name !== name) continue;
      const has = new Map((manifest.labels ?? []).map((l) => [l.name, l.value] as const));
      if ([...labels].every(([k, v]) => has.get(k) === v)) hits.push({ id, importTime: record.importTime });
    }
    return hits.sort((a, b) => b.importTime - a.importTime).map((h) => h.id);
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
    for (const ref of this.storedNames()) if (ref.id === id) fs.rmSync(this.nameFile(ref.name, ref.kind), { force: true });
    const dir = this.paths.image(id);
    fs.rmSync(path.join(dir, 'record.json'), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // ---- names ----

  private namesDirOf(kind: NameKind): string {
    return kind === 'docker' ? this.paths.namesDir : this.paths.appcNamesDir;
  }

  private nameFile(name: string, kind: NameKind): string {
    return path.join(this.namesDirOf(kind), encodeURIComponent(name));
  }

  /** Points `name` (of the given kind) at image `id`. */
  setName(name: string, id: string, scratch: Scratch, kind: NameKind): void {
    const dir = this.namesDirOf(kind);
    fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const tmp = scratch.path('name');
    fs.writeFileSync(tmp, `${id}\n`);
    fs.renameSync(tmp, this.nameFile(name, kind));
  }

  /** Every name reference, of the kind of the directory it is in. */
  private storedNames(): NameRef[] {
    const out: NameRef[] = [];
    for (const kind of ['docker', 'appc'] as const) {
      const dir = this.namesDirOf(kind);
      for (const file of safeReaddir(dir)) {
        const id = readId(path.join(dir, file));
        if (id === undefined) continue;
        out.push({ name: decodeURIComponent(file), id, kind });
      }
    }
    return out;
  }

  namesOf(id: string): string[] {
    return [...new Set(this.storedNames().filter((n) => n.id === id).map((n) => n.name))].sort();
  }

  /**
   * The image a docker name (`registry/repository:tag`, as a docker:// reference
   * is recorded) points at, or undefined. Only docker names are looked at: an
   * ACI's self-declared name never answers a docker:// reference.
   */
  lookupName(name: string): string | undefined {
    return this.lookupKind(name, 'docker');
  }

  private lookupKind(name: string, kind: NameKind): string | undefined {
    const id = readId(this.nameFile(name, kind));
    if (id === undefined || !this.has(id)) return undefined;
    // An older store kept ACIs' names with the docker names.
    if (kind === 'docker' && this.isAci(id)) return undefined;
    return id;
  }

  /** Whether image `id` is an appc image (its record says so). */
  private isAci(id: string): boolean {
    try {
      return (JSON.parse(fs.readFileSync(path.join(this.paths.image(id), 'record.json'), 'utf8')) as ImageRecord).kind === 'aci';
    } catch {
      return false;
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

  /**
   * Name lookup without a transport; undefined when nothing matches. Docker names
   * with Docker's shorthands (`busybox` is `…/busybox:latest` of any registry, if
   * only one matches); appc names by appc's rules (exact `name:version`; a name
   * without a version finds the latest import of any version, as for docker names).
   * A name that finds one image as a docker name and another as an appc name is
   * ambiguous.
   */
  resolveName(name: string): string | undefined {
    const exact = new Set<string>();
    const docker = nameVariants(name).map((c) => this.lookupKind(c, 'docker')).find((id) => id !== undefined);
    if (docker) exact.add(docker);
    const appc = hasTag(name) ? this.lookupKind(name, 'appc') ?? this.legacyAppc(name) : undefined;
    if (appc) exact.add(appc);
    if (exact.size > 1) {
      throw new TspodError(ErrorCode.Ambiguous, `image name ${JSON.stringify(name)} names a registry image and an appc image`, {
        hint: 'use docker://NAME for the registry image, or an image ID',
      });
    }
    if (exact.size === 1) return [...exact][0];
    const all = this.storedNames().filter((r) => this.has(r.id));
    // Short names: `busybox` or `busybox:1.0` match `<any registry>/busybox[:tag]` (docker names only).
    const wanted = hasTag(name) ? [name] : [name, `${name}:latest`];
    const hits = new Set<string>();
    for (const ref of all) {
      if (ref.kind === 'docker' && wanted.some((w) => ref.name.endsWith(`/${w}`)) && !this.isAci(ref.id)) hits.add(ref.id);
    }
    if (hits.size > 1) {
      throw new TspodError(ErrorCode.Ambiguous, `image name ${JSON.stringify(name)} matches ${hits.size} images`, {
        hint: 'give the full name with registry and tag, or an image ID',
      });
    }
    if (hits.size === 1) return [...hits][0];
    // appc's rule: a name without a version matches any version of that exact
    // name (`tspod/stage1` finds `tspod/stage1:0.1.0`), and an ACI without a
    // version label; the latest import wins.
    if (!hasTag(name)) {
      const versions = all.filter((r) => r.name.startsWith(`${name}:`) || (r.name === name && (r.kind === 'appc' || this.isAci(r.id))));
      if (versions.length) {
        return versions.map((r) => this.get(r.id)).sort((a, b) => b.record.importTime - a.record.importTime)[0].record.id;
      }
    }
    return undefined;
  }

  /** An appc name an older store kept with the docker names. */
  private legacyAppc(name: string): string | undefined {
    const id = readId(this.nameFile(name, 'docker'));
    return id !== undefined && this.has(id) && this.isAci(id) ? id : undefined;
  }
}

function readId(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
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
