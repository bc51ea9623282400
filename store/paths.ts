// Where everything lives under $DIR (default /var/lib/tspod). One place, so that
// the layout is described once, and the one place that keeps it private.
//
// Access. Layers hold image content as root unpacked it: setuid-root binaries,
// files with security.capability, device nodes, and configs that may carry
// secrets. Nothing outside root ever needs a path under $DIR (apps see their
// rootfs through overlay mounts made by root, after pivot_root; overlayfs checks
// the lower and upper directories with the mounter's credentials), so $DIR is
// 0700 and every directory tspod makes under it is 0700 too. An existing data
// directory with looser modes (tspod up to 0.1.0 made them 0755) is tightened by
// the next command that opens the store or the pods (secureDataDir).
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode, errnoCode } from '../native/errors.js';
import { log } from '../native/log.js';

export const DEFAULT_DIR = '/var/lib/tspod';

/** The mode of $DIR and of every directory tspod makes under it (layer rootfs directories keep the image's). */
export const PRIVATE_DIR_MODE = 0o700;

export class StorePaths {
  /** $DIR/cas: the image store. */
  readonly cas: string;
  constructor(readonly dir: string) {
    this.cas = path.join(dir, 'cas');
  }
  /** Content-addressed blobs: manifests, configs, image indexes, ACIs as fetched (store/aci-archive.ts). */
  blob(algorithm: string, hex: string): string {
    return path.join(this.cas, 'blobs', algorithm, hex);
  }
  get blobsDir(): string {
    return path.join(this.cas, 'blobs');
  }
  /**
   * One unpacked layer: `<layer>/rootfs` is an overlay lower dir, `<layer>/info.json`
   * its record. Layer IDs: `sha256-<diff_id hex>` (shared by every image that has the
   * layer), `chain-sha256-<chain ID hex>` (a layer with hardlinks into the layers
   * below it, whose content depends on them), `sha512-<hex>` (an ACI's rootfs),
   * `pwl-sha256-<hex>` (the whiteouts that apply an ACI's pathWhitelist over the
   * layers below it: store/layers/whitelist.ts).
   */
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
  /**
   * Docker/OCI name → image ID references (`host/repo:tag`), one small file per
   * name: recorded only by docker://, docker-archive and OCI layout/archive fetches,
   * and the only names a docker:// reference is looked up by.
   */
  get namesDir(): string {
    return path.join(this.cas, 'names');
  }
  /** appc name → image ID references (`name:version`), recorded for ACIs. */
  get appcNamesDir(): string {
    return path.join(this.cas, 'appc-names');
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
  /** The store's fixed directories, made 0700 when the store is opened. */
  get storeDirs(): string[] {
    return [
      this.cas,
      this.blobsDir,
      path.join(this.blobsDir, 'sha256'),
      path.join(this.blobsDir, 'sha512'),
      this.layersDir,
      this.imagesDir,
      this.namesDir,
      this.appcNamesDir,
      this.tmpDir,
      this.locksDir,
    ];
  }
}

/** Data directories already checked by this process. */
const secured = new Set<string>();

/**
 * Creates the data directory (0700; its missing parents as usual) unless it
 * exists, and makes sure it is private (secureDataDir).
 */
export function createDataDir(dir: string): void {
  const abs = path.resolve(dir);
  try {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.mkdirSync(abs, { mode: PRIVATE_DIR_MODE });
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'EEXIST') {
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        throw new TspodError(ErrorCode.Permission, `cannot create the store in ${dir}: ${code}`, { hint: 'run as root', remedy: 'choose-data-dir' });
      }
      throw e;
    }
  }
  secureDataDir(abs);
}

/**
 * Makes an existing data directory private: $DIR, $DIR/cas, $DIR/pods and the
 * directories directly in those two get mode 0700 if any group or other bits are
 * set. A directory that is writable by every user (`/tmp`) or owned by another
 * user is refused: it cannot be made private without breaking it, and whoever
 * can write there can replace the store. Does nothing for a directory that does
 * not exist. Cheap (a stat or two per directory), and done once per process.
 */
export function secureDataDir(dir: string): void {
  const abs = path.resolve(dir);
  if (secured.has(abs)) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  if (!st.isDirectory()) throw new TspodError(ErrorCode.BadInput, `data directory ${dir} is not a directory`, { remedy: 'choose-data-dir' });
  if (st.mode & 0o002) {
    throw new TspodError(
      ErrorCode.Permission,
      `data directory ${dir} is writable by every user (mode ${octal(st.mode)}), and tspod keeps its store only in a directory of its own`,
      { remedy: 'choose-data-dir' },
    );
  }
  const euid = process.geteuid?.();
  if (euid !== undefined && st.uid !== euid) {
    throw new TspodError(ErrorCode.Permission, `data directory ${dir} is owned by uid ${st.uid}, not by uid ${euid}, which runs tspod`, {
      hint: 'chown it',
      remedy: 'choose-data-dir',
    });
  }
  tighten(abs, st);
  for (const sub of ['cas', 'pods']) {
    const p = path.join(abs, sub);
    const sst = lstatDir(p);
    if (!sst) continue;
    tighten(p, sst);
    for (const name of readdir(p)) {
      const child = path.join(p, name);
      const cst = lstatDir(child);
      if (cst) tighten(child, cst);
    }
  }
  secured.add(abs);
}

function lstatDir(p: string): fs.Stats | undefined {
  try {
    const st = fs.lstatSync(p);
    return st.isDirectory() ? st : undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

function readdir(p: string): string[] {
  try {
    return fs.readdirSync(p);
  } catch {
    return [];
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function tighten(p: string, st: fs.Stats): void {
  if ((st.mode & 0o077) === 0) return;
  try {
    fs.chmodSync(p, PRIVATE_DIR_MODE);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EROFS') {
      log().warn(`${p} is accessible to other users (mode ${octal(st.mode)}) and on a read-only file system: cannot make it private`);
      return;
    }
    throw new TspodError(ErrorCode.Permission, `cannot make ${p} private (mode ${octal(st.mode)}): ${code ?? String(e)}`, {
      hint: 'run as root, or chmod 0700 it',
    });
  }
}
