// Unpacked layers, shared between images: cas/layers/<layerId>/{rootfs/,info.json}.
// A layer is unpacked once, into scratch, and renamed into place only after every
// digest has been checked, so a layer directory that exists is always complete.
//
// Keys. A layer's directory is all of its content, so its key must name
// everything that content depends on. For most layers that is the layer's tar
// alone: they are keyed by diff_id (`sha256-<hex>`) and shared by every image
// that has them. A layer with a hardlink whose target is only in the layers below
// it holds a copy of that lower file (store/layers/unpack.ts), so its content
// depends on the whole lower chain: it is keyed by its OCI chain ID
// (`chain-sha256-<hex>`) and shared only by images with the same layers below it.
// Whether a tar links into lower layers is a property of the tar alone, so one
// diff_id is either always shared or always chain-keyed.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { sys } from '../../native/sys.js';
import { commitDir, safeReaddir } from '../blobs.js';
import { FileLock } from '../lock.js';
import { PRIVATE_DIR_MODE, type StorePaths } from '../paths.js';
import { digestToId } from '../digest.js';

export interface LayerInfo {
  /**
   * `sha256-<diffID hex>` for OCI layers, `chain-sha256-<chain ID hex>` for OCI
   * layers that link into the layers below them, `sha512-<64 hex>` for an ACI's rootfs.
   */
  id: string;
  /** The uncompressed tar's digest (`sha256:<hex>`), or the ACI's for appc images. */
  diffId: string;
  /**
   * Set only for a chain-keyed layer: the OCI chain ID (`sha256:<hex>`) of the
   * layers up to and including this one, whose lower part its content was made from.
   */
  chainId?: string;
  /** Digest over the unpacked tree (store/layers/treehash.ts), checked by `image verify`. */
  treeHash: string;
  /** Bytes of regular-file content. */
  size: number;
  entries: number;
  /** ms since the epoch. */
  importTime: number;
}

export type LayerResult = Omit<LayerInfo, 'id' | 'importTime'>;

export interface LayerReservation {
  /** The reserved layers that are not in the store (sorted). */
  missing: string[];
  /** Moves `work` (holding `rootfs/`) into place as layer `id`; `id` must be reserved. */
  commit(id: string, work: string, result: LayerResult): void;
  /** Releases every lock; call it once, whatever happened. */
  release(): void;
}

export class LayerStore {
  constructor(private readonly paths: StorePaths) {}

  dir(id: string): string {
    return this.paths.layer(id);
  }

  rootfs(id: string): string {
    return path.join(this.paths.layer(id), 'rootfs');
  }

  has(id: string): boolean {
    return fs.existsSync(path.join(this.paths.layer(id), 'info.json'));
  }

  info(id: string): LayerInfo {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.paths.layer(id), 'info.json'), 'utf8')) as LayerInfo;
    } catch (e) {
      throw new TspodError(ErrorCode.NotFound, `layer ${id} is missing from the store`, {
        hint: 'fetch the image again',
        cause: e,
      });
    }
  }

  list(): string[] {
    return safeReaddir(this.paths.layersDir);
  }

  /**
   * For layers whose ID is known only after unpacking (an ACI's ID is the hash of
   * the whole archive): `work/rootfs` was filled by the caller; it becomes layer
   * `id` unless that layer already exists.
   */
  async adopt(id: string, work: string, result: LayerResult): Promise<void> {
    const lock = await FileLock.acquire(this.lockFile(id), 'exclusive');
    try {
      if (this.has(id)) {
        fs.rmSync(work, { recursive: true, force: true });
        return;
      }
      this.commit(id, work, result);
    } finally {
      lock.release();
    }
  }

  /**
   * For an import that must add all of an image's missing layers or none: locks
   * every layer in `ids` (exclusive, in sorted order, so that two imports never
   * wait for each other in a cycle) and reports which are still missing once the
   * locks are held. The caller unpacks those into scratch, commits them with
   * `commit` only when all of them succeeded, and releases the locks in any case.
   * A concurrent import of the same layers waits until then and finds them present.
   */
  async reserve(ids: string[]): Promise<LayerReservation> {
    const sorted = [...new Set(ids)].sort();
    const locks: FileLock[] = [];
    const release = () => {
      for (const l of locks.splice(0).reverse()) l.release();
    };
    try {
      for (const id of sorted) {
        if (this.has(id)) continue;
        locks.push(await FileLock.acquire(this.lockFile(id), 'exclusive'));
      }
    } catch (e) {
      release();
      throw e;
    }
    const locked = new Set(locks.map((l) => l.file));
    return {
      missing: sorted.filter((id) => !this.has(id)),
      commit: (id, work, result) => {
        if (!locked.has(this.lockFile(id))) throw new Error(`layer ${id} was not reserved`);
        if (this.has(id)) {
          fs.rmSync(work, { recursive: true, force: true });
          return;
        }
        this.commit(id, work, result);
      },
      release,
    };
  }

  private lockFile(id: string): string {
    return path.join(this.paths.locksDir, `layer-${id}.lock`);
  }

  /** Called with the layer lock held: info.json, flush to disk, rename into place. */
  private commit(id: string, work: string, result: LayerResult): void {
    const info: LayerInfo = { id, importTime: Date.now(), ...result };
    // The layer directory is private (store/paths.ts); its rootfs keeps the image's mode.
    fs.chmodSync(work, PRIVATE_DIR_MODE);
    fs.writeFileSync(path.join(work, 'info.json'), JSON.stringify(info, null, 2));
    flushFilesystem(work);
    // A directory left behind without info.json (a crash while removing) is not trusted.
    commitDir(work, this.paths.layer(id));
  }

  /** Removes a layer; callers make sure no image uses it. */
  remove(id: string): void {
    const dir = this.paths.layer(id);
    // Drop info.json first: a half-removed layer is then clearly incomplete.
    fs.rmSync(path.join(dir, 'info.json'), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * OCI chain IDs of an image's layers, lowest first (image-spec config.md):
 * ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const below = out[out.length - 1];
    out.push(below === undefined ? d : `sha256:${createHash('sha256').update(`${below} ${d}`).digest('hex')}`);
  }
  return out;
}

/** The layer ID of a diff_id-keyed (shared) layer. */
export function sharedLayerId(diffId: string): string {
  return digestToId(diffId);
}

/** The layer ID of a chain-keyed layer (one that links into the layers below it). */
export function chainLayerId(chainId: string): string {
  return `chain-${digestToId(chainId)}`;
}

/** syncfs on the filesystem holding `dir`: everything unpacked there reaches the disk. */
export function flushFilesystem(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    sys().syncfs(fd);
  } finally {
    fs.closeSync(fd);
  }
}
