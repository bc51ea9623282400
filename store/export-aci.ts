// `image export` of an image that did not come as an ACI (an ACI is written back
// as it was fetched: store/aci-archive.ts): writes a rendered image tree as an
// uncompressed ACI that `tspod fetch` (and rkt) take back: `manifest` first, then `rootfs/` and
// everything under it in sorted order, depth first. Modes, owners, mtimes
// (seconds), symlinks, hard links (within the tree), device nodes, fifos and
// extended attributes (PAX SCHILY.xattr.*) are kept; sockets cannot be stored in
// a tar and are skipped.
//
// The archive is written to a temporary file beside `out`, synced, and then
// renamed (with `overwrite`) or hard-linked into place (without it, so that a
// file that appeared meanwhile is not replaced).
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { TspodError, ErrorCode, errnoCode } from '../native/errors.js';
import { sys } from '../native/sys.js';
import { log } from '../native/log.js';
import { isOverlayXattr } from '../native/overlay.js';
import type { AppcImageManifest } from './manifest/appc.js';
import type { TarEntry } from './tar/entry.js';
import { encodeTarHeader, TAR_END, tarEntry, tarPadding } from './tar/writer.js';

export interface ExportAciOptions {
  manifest: AppcImageManifest;
  /** The rendered tree: becomes rootfs/. */
  rootfsDir: string;
  /** The .aci file to write. */
  out: string;
  overwrite: boolean;
  /** Store extended attributes (default true). */
  xattrs?: boolean;
}

export async function exportAci(opts: ExportAciOptions): Promise<void> {
  const rootStat = await fs.promises.lstat(opts.rootfsDir, { bigint: true }).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw new Error(`exportAci: ${opts.rootfsDir} is not a directory`);
  await writeOutputFile(opts.out, opts.overwrite, async (fh) => {
    const w = new BufferedWriter(fh);
    const writer = new AciWriter(w, opts.rootfsDir, opts.xattrs ?? true);
    const manifestBytes = Buffer.from(JSON.stringify(opts.manifest, null, 2));
    const mtime = Number(rootStat.mtimeNs / 1_000_000_000n);
    await w.write(encodeTarHeader(tarEntry({ path: 'manifest', type: 'file', mode: 0o644, size: manifestBytes.length, mtime })));
    await w.write(manifestBytes);
    await w.write(tarPadding(manifestBytes.length));
    await writer.entry('', rootStat);
    await writer.walk('');
    await w.write(TAR_END);
    await w.flush();
  });
}

/**
 * Writes an output `.aci` file: `fill` writes a temporary file beside `out`,
 * which is synced and then renamed (with `overwrite`) or hard-linked into place
 * (without it, so that a file that appeared meanwhile is not replaced). Nothing
 * appears at `out` unless `fill` succeeds.
 */
export async function writeOutputFile(out: string, overwrite: boolean, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  if (!out.endsWith('.aci')) {
    throw new TspodError(ErrorCode.BadInput, `output file ${JSON.stringify(out)} must end in .aci`);
  }
  const outExists = await fs.promises.lstat(out).then(
    () => true,
    () => false,
  );
  if (outExists && !overwrite) {
    throw new TspodError(ErrorCode.Conflict, `output ACI file ${JSON.stringify(out)} exists`, { remedy: 'allow-overwrite' });
  }
  const dir = path.dirname(path.resolve(out));
  const tmp = path.join(dir, `.${path.basename(out)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'wx', 0o644);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') throw new TspodError(ErrorCode.NotFound, `cannot write ${JSON.stringify(out)}: directory ${dir} does not exist`);
    if (code === 'EACCES' || code === 'EROFS') throw new TspodError(ErrorCode.Permission, `cannot write ${JSON.stringify(out)}: ${code}`);
    throw e;
  }
  let placed = false;
  try {
    await fill(fh);
    await fh.sync();
    await fh.close();
    if (overwrite) {
      await fs.promises.rename(tmp, out);
    } else {
      try {
        await fs.promises.link(tmp, out);
      } catch (e) {
        if (errnoCode(e) === 'EEXIST') {
          throw new TspodError(ErrorCode.Conflict, `output ACI file ${JSON.stringify(out)} exists`, { remedy: 'allow-overwrite' });
        }
        throw e;
      }
      await fs.promises.unlink(tmp);
    }
    placed = true;
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } finally {
    if (!placed) {
      await fh.close().catch(() => undefined);
      await fs.promises.unlink(tmp).catch(() => undefined);
    }
  }
}

/** Collects small writes (headers) into large ones. */
class BufferedWriter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    if (this.used + data.length > this.buf.length) await this.flush();
    if (data.length >= this.buf.length) {
      await writeAll(this.fh, data);
      return;
    }
    data.copy(this.buf, this.used);
    this.used += data.length;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    await writeAll(this.fh, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

/**
 * A Writable that writes to `fh` and leaves it open (a stream made with
 * fh.createWriteStream keeps a reference that makes fh.close() wait for it).
 */
export function fileHandleSink(fh: FileHandle): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write: (chunk: Buffer, _enc, cb) => {
      writeAll(fh, chunk).then(() => cb(), cb);
    },
  });
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

/** xattrs that describe the host rather than the image. */
function keepXattr(name: string): boolean {
  if (name === 'security.selinux') return false;
  if (isOverlayXattr(name)) return false;
  if (name.startsWith('system.')) return false; // POSIX ACLs: not carried as xattrs in tar
  return true;
}

class AciWriter {
  /** dev:ino → archive path of the first link seen. */
  private readonly links = new Map<string, string>();
  private xattrsUsable: boolean;

  constructor(
    private readonly w: BufferedWriter,
    private readonly root: string,
    xattrs: boolean,
  ) {
    this.xattrsUsable = xattrs;
  }

  async walk(rel: string): Promise<void> {
    const dir = path.join(this.root, rel);
    const names = (await fs.promises.readdir(dir)).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const st = await fs.promises.lstat(path.join(this.root, childRel), { bigint: true });
      const wrote = await this.entry(childRel, st);
      if (wrote && st.isDirectory()) await this.walk(childRel);
    }
  }

  /** Writes one entry (and a regular file's data); false for what a tar cannot hold. */
  async entry(rel: string, st: fs.BigIntStats): Promise<boolean> {
    const full = path.join(this.root, rel);
    const archivePath = rel === '' ? 'rootfs/' : `rootfs/${rel}`;
    const base = {
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      xattrs: this.xattrs(full),
    };
    let e: TarEntry;
    if (st.isDirectory()) {
      e = tarEntry({ ...base, path: rel === '' ? archivePath : `${archivePath}/`, type: 'dir' });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? this.links.get(key) : undefined;
      if (first) {
        e = tarEntry({ ...base, path: archivePath, type: 'hardlink', linkpath: first });
      } else {
        if (st.nlink > 1n) this.links.set(key, archivePath);
        e = tarEntry({ ...base, path: archivePath, type: 'file', size: Number(st.size) });
      }
    } else if (st.isSymbolicLink()) {
      e = tarEntry({ ...base, path: archivePath, type: 'symlink', linkpath: await fs.promises.readlink(full) });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = st.rdev;
      const devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      const devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
      e = tarEntry({ ...base, path: archivePath, type: st.isCharacterDevice() ? 'char' : 'block', devmajor, devminor });
    } else if (st.isFIFO()) {
      e = tarEntry({ ...base, path: archivePath, type: 'fifo' });
    } else {
      log().warn(`image export: skipping ${archivePath}: a socket cannot be stored in an ACI`);
      return false;
    }
    await this.w.write(encodeTarHeader(e));
    if (e.type === 'file' && e.size > 0) {
      await this.copyData(full, e.size, archivePath);
      await this.w.write(tarPadding(e.size));
    }
    return true;
  }

  private async copyData(file: string, size: number, archivePath: string): Promise<void> {
    const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      let left = size;
      while (left > 0) {
        const chunk = Buffer.allocUnsafe(Math.min(left, 1 << 20));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, size - left);
        if (bytesRead === 0) throw new Error(`${archivePath} shrank while it was being exported`);
        await this.w.write(chunk.subarray(0, bytesRead));
        left -= bytesRead;
      }
    } finally {
      await fh.close();
    }
  }

  private xattrs(full: string): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    if (!this.xattrsUsable) return out;
    let names: string[];
    try {
      names = sys().llistxattr(full);
    } catch (e) {
      // No koffi or no xattr support here: export without them, once told.
      this.xattrsUsable = false;
      log().debug(`image export: not storing extended attributes (${(e as Error).message})`);
      return out;
    }
    for (const name of names.sort()) {
      if (!keepXattr(name)) continue;
      const value = sys().lgetxattr(full, name);
      if (value !== undefined) out.set(name, Buffer.from(value));
    }
    return out;
  }
}
