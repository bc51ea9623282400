// Where everything lives under $DIR (default /var/lib/tspod). One place, so that
// the layout is described once.
import path from 'node:path';

export const DEFAULT_DIR = '/var/lib/tspod';

export class StorePaths {
  /** $DIR/cas: the image store. */
  readonly cas: string;
  constructor(readonly dir: string) {
    this.cas = path.join(dir, 'cas');
  }
  /** Content-addressed blobs: manifests, configs, image indexes. */
  blob(algorithm: string, hex: string): string {
    return path.join(this.cas, 'blobs', algorithm, hex);
  }
  get blobsDir(): string {
    return path.join(this.cas, 'blobs');
  }
  /** One unpacked layer: `<layer>/rootfs` is an overlay lower dir, `<layer>/info.json` its record. */
  layer(layerId: string): string {
    return path.join(this.cas, 'layers', layerId);
  }
  get layersDir(): string {
    return path.join(this.cas, 'layers');
  }
  /** One image record directory, named by image ID (`sha256-<hex>` or `sha512-<hex>`). */
  image(imageId: string): string {
    return path.join(this.cas, 'images', imageId);
  }
  get imagesDir(): string {
    return path.join(this.cas, 'images');
  }
  /** Name → image ID references, one small file per name. */
  get namesDir(): string {
    return path.join(this.cas, 'names');
  }
  /** Scratch space; every process works in its own locked subdirectory. */
  get tmpDir(): string {
    return path.join(this.cas, 'tmp');
  }
  get locksDir(): string {
    return path.join(this.cas, 'locks');
  }
  /** Flocked shared by every store user, exclusive by `image gc`. */
  get storeLock(): string {
    return path.join(this.cas, 'store.lock');
  }
  get podsDir(): string {
    return path.join(this.dir, 'pods');
  }
}
