// `oci-archive:FILE[:TAG]`: a tar of an OCI image layout (what
// `skopeo copy … oci-archive:FILE` and `buildah push … oci-archive:` write).
//
// Nothing is extracted: the archive is indexed once (a header read per member,
// data skipped) and blobs are read in place by offset. A compressed archive
// (gzip, zstd, bzip2, xz) is first decompressed into the caller's scratch
// directory, which close() removes.
//
// TarIndex is shared with docker-archive.ts.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TspodError, ErrorCode, errnoCode } from '../../native/errors.js';
import { decompress, sniffCompression, SNIFF_BYTES } from '../layers/decompress.js';
import { TAR_BLOCK, tarPaddedSize, type TarType } from '../tar/entry.js';
import { TarHeaderDecoder, isZeroBlock, type TarHeader } from '../tar/reader.js';
import { openLayout, tooBig, type LayoutOptions } from './oci-layout.js';
import type { OciCandidate } from './source.js';

export interface ArchiveOptions extends LayoutOptions {
  /** Where a compressed archive may be decompressed to (created if needed, removed by close()). */
  scratchDir?: string;
}

export async function openOciArchive(file: string, ref: string | undefined, opts: ArchiveOptions = {}): Promise<OciCandidate> {
  const abs = path.resolve(file);
  const describe = `oci-archive:${abs}`;
  const archive = await TarIndex.open(abs, { what: describe, scratchDir: opts.scratchDir, userPath: file });
  try {
    if (!archive.get('oci-layout') && archive.get('manifest.json')) {
      throw new TspodError(ErrorCode.BadFormat, `${describe} is not an OCI archive: it has no oci-layout file`, {
        hint: `it looks like what docker save writes; use docker-archive:${file}`,
      });
    }
    return await openLayout(
      {
        describe,
        readFile: (rel, max) => archive.readFile(rel, max),
        open: async (rel) => archive.open(rel),
      },
      {
        source: ref === undefined ? describe : `${describe}:${ref}`,
        ref,
        nameBase: archiveBaseName(abs),
        platform: opts.platform,
        close: () => archive.close(),
      },
    );
  } catch (e) {
    await archive.close();
    throw e;
  }
}

/** `busybox.oci.tar.gz` → `busybox`. */
export function archiveBaseName(file: string): string {
  let base = path.basename(file);
  for (;;) {
    const next = base.replace(/\.(tar|tgz|gz|zst|zstd|xz|bz2|oci|ociarchive|docker)$/i, '');
    if (next === base || next === '') break;
    base = next;
  }
  return base;
}

export interface TarMember {
  /** Normalised path: no `./`, no leading or trailing `/`. */
  path: string;
  type: TarType;
  /** Offset of the data in the (decompressed) archive file. */
  offset: number;
  size: number;
  linkpath: string;
}

/** `./a//b/` → `a/b`; undefined for paths that climb out (`..`). */
export function normalizeMemberPath(p: string): string | undefined {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return undefined;
    parts.push(c);
  }
  return parts.join('/');
}

/** The members of a tar file, by path, read in place. */
export class TarIndex {
  private readonly members = new Map<string, TarMember>();

  private constructor(
    readonly file: string,
    readonly what: string,
    private readonly scratchDir: string | undefined,
  ) {}

  /**
   * Indexes `file`, decompressing it into `scratchDir` first if it is compressed.
   * `what` names the archive in messages (`docker-archive:/x.tar`).
   */
  static async open(file: string, opts: { what: string; scratchDir?: string; userPath?: string }): Promise<TarIndex> {
    const shown = JSON.stringify(opts.userPath ?? file);
    let fh: FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new TspodError(ErrorCode.NotFound, `archive ${shown} does not exist`);
      if (code === 'EACCES') throw new TspodError(ErrorCode.Permission, `cannot read archive ${shown}: permission denied`);
      throw e;
    }
    let tarFile = file;
    let scratch: string | undefined;
    try {
      const st = await fh.stat();
      if (st.isDirectory()) {
        throw new TspodError(ErrorCode.BadInput, `${shown} is a directory, not an archive`, {
          hint: opts.what.startsWith('oci-archive:') ? `for an OCI image layout directory use oci:${opts.userPath ?? file}` : undefined,
        });
      }
      const head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
      const compression = sniffCompression(head.subarray(0, bytesRead));
      if (compression !== 'none') {
        if (!opts.scratchDir) throw new Error(`TarIndex: ${compression}-compressed ${file} needs a scratch directory`);
        scratch = opts.scratchDir;
        await fs.promises.mkdir(scratch, { recursive: true, mode: 0o700 });
        tarFile = path.join(scratch, 'archive.tar');
        await pipeline(decompress(fs.createReadStream(file), compression, opts.what), fs.createWriteStream(tarFile, { mode: 0o600 }));
      }
    } catch (e) {
      await fh.close();
      if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
      throw e;
    }
    const index = new TarIndex(tarFile, opts.what, scratch);
    try {
      if (tarFile !== file) {
        await fh.close();
        fh = await fs.promises.open(tarFile, 'r');
      }
      await index.scan(fh);
    } catch (e) {
      await index.close();
      throw e;
    } finally {
      await fh.close().catch(() => undefined);
    }
    return index;
  }

  private async scan(fh: FileHandle): Promise<void> {
    const size = (await fh.stat()).size;
    const decoder = new TarHeaderDecoder({ what: this.what });
    const block = Buffer.alloc(TAR_BLOCK);
    let pos = 0;
    let first = true;
    for (;;) {
      if (pos + TAR_BLOCK > size) {
        if (pos === size && !first) return; // no end-of-archive blocks: accepted
        throw this.notTar(first ? 'it is empty or not a tar archive' : 'it is truncated');
      }
      await readFully(fh, block, pos);
      if (isZeroBlock(block)) return;
      let h: TarHeader;
      try {
        h = decoder.header(block, pos);
      } catch (e) {
        if (first) throw this.notTar('it is not a tar archive');
        throw e;
      }
      first = false;
      const dataStart = pos + TAR_BLOCK;
      if (dataStart + h.bodySize > size) throw this.notTar('it is truncated');
      if (h.kind === 'meta') {
        const data = Buffer.alloc(h.bodySize);
        await readFully(fh, data, dataStart);
        decoder.meta(data, pos);
      } else if (h.kind === 'entry') {
        const e = h.entry;
        const p = normalizeMemberPath(e.path);
        if (p !== undefined && p !== '') {
          this.members.set(p, { path: p, type: e.type, offset: dataStart, size: e.size, linkpath: e.linkpath });
        }
      }
      pos = dataStart + tarPaddedSize(h.bodySize);
    }
  }

  private notTar(detail: string): TspodError {
    return new TspodError(ErrorCode.BadFormat, `${this.what}: ${detail}`);
  }

  /** Member paths, in archive order. */
  paths(): string[] {
    return [...this.members.keys()];
  }

  /** A member by path, following symlinks and hard links inside the archive. */
  get(rel: string): TarMember | undefined {
    let p = normalizeMemberPath(rel);
    for (let hops = 0; p !== undefined && hops < 16; hops++) {
      const m = this.members.get(p);
      if (!m) return undefined;
      if (m.type === 'hardlink') p = normalizeMemberPath(m.linkpath);
      else if (m.type === 'symlink') {
        p = normalizeMemberPath(m.linkpath.startsWith('/') ? m.linkpath : path.posix.join(path.posix.dirname(m.path), m.linkpath));
      } else return m;
    }
    return undefined;
  }

  /** A regular file's bytes; undefined if there is no such member. */
  async readFile(rel: string, maxBytes: number): Promise<Buffer | undefined> {
    const m = this.get(rel);
    if (!m) return undefined;
    if (m.type !== 'file') throw new TspodError(ErrorCode.BadFormat, `${rel} in ${this.what} is not a regular file`);
    if (m.size > maxBytes) throw tooBig(rel, this.what, m.size, maxBytes);
    return this.readRange(m.offset, m.size);
  }

  async readRange(offset: number, length: number): Promise<Buffer> {
    const fh = await fs.promises.open(this.file, 'r');
    try {
      const buf = Buffer.alloc(length);
      await readFully(fh, buf, offset);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** A regular file as a stream; throws NotFound if there is no such member. */
  open(rel: string): Readable {
    const m = this.get(rel);
    if (!m) {
      const blob = /^blobs\/([^/]+)\/([^/]+)$/.exec(rel);
      throw new TspodError(ErrorCode.NotFound, `${blob ? `blob ${blob[1]}:${blob[2]}` : rel} is missing from ${this.what}`);
    }
    if (m.type !== 'file') throw new TspodError(ErrorCode.BadFormat, `${rel} in ${this.what} is not a regular file`);
    return this.openMember(m);
  }

  openMember(m: TarMember): Readable {
    if (m.size === 0) return Readable.from([]);
    return fs.createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }

  /** Removes the decompressed copy, if one was made. */
  async close(): Promise<void> {
    if (this.scratchDir) await fs.promises.rm(this.scratchDir, { recursive: true, force: true });
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new TspodError(ErrorCode.BadFormat, 'archive ended early (truncated)');
    done += bytesRead;
  }
}
