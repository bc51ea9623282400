// The image store: one object giving access to blobs, layers and image records
// under $DIR/cas. Every user holds cas/store.lock shared; `image gc` takes it
// exclusive for its sweep, so nothing is removed under a running fetch.
import fs from 'node:fs';
import { TspodError, ErrorCode, errnoCode } from '../native/errors.js';
import { BlobStore } from './blobs.js';
import { ImageStore } from './images.js';
import { LayerStore } from './layers/store.js';
import { FileLock } from './lock.js';
import { createDataDir, PRIVATE_DIR_MODE, StorePaths } from './paths.js';
import { Scratch } from './scratch.js';

export class Store {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly images: ImageStore;
  private scratchDir?: Scratch;

  private constructor(readonly paths: StorePaths, private lock: FileLock) {
    this.blobs = new BlobStore(paths);
    this.layers = new LayerStore(paths);
    this.images = new ImageStore(paths);
  }

  static async open(dir: string): Promise<Store> {
    const paths = new StorePaths(dir);
    // $DIR and everything tspod makes under it are private (store/paths.ts): the
    // fixed directories are made here with 0700, so that nothing below makes them
    // with the default mode, and an older store's looser modes are tightened.
    createDataDir(dir);
    for (const d of paths.storeDirs) {
      try {
        fs.mkdirSync(d, { mode: PRIVATE_DIR_MODE });
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EEXIST') continue;
        if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
          throw new TspodError(ErrorCode.Permission, `cannot create the store in ${dir}: ${code}`, {
            hint: 'run as root',
            remedy: 'choose-data-dir',
          });
        }
        throw e;
      }
    }
    const lock = await FileLock.acquire(paths.storeLock, 'shared');
    Scratch.sweepAbandoned(paths.tmpDir);
    return new Store(paths, lock);
  }

  /** This process's scratch directory inside the store (made on first use). */
  scratch(): Scratch {
    this.scratchDir ??= Scratch.open(this.paths.tmpDir);
    return this.scratchDir;
  }

  /** Upgrades to the exclusive store lock (for gc), waiting for other users. */
  async exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    this.lock.release();
    this.lock = await FileLock.acquire(this.paths.storeLock, 'exclusive');
    try {
      return await fn();
    } finally {
      this.lock.release();
      this.lock = await FileLock.acquire(this.paths.storeLock, 'shared');
    }
  }

  close(): void {
    this.scratchDir?.close();
    this.scratchDir = undefined;
    this.lock.release();
  }
}

/** Opens the store, runs fn, and closes the store whatever happens. */
export async function withStore<T>(dir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(dir);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
