// tspod's tar reader, the only one: the layer unpacker, the ACI splitter and the
// archive indexes (oci-archive, docker-archive) all read tar through it. node-tar
// is not used for reading because it drops PAX xattrs and decodes PAX values as
// text, which breaks binary values such as security.capability.
//
// Formats: ustar (with its name prefix), GNU (long names 'L'/'K', base-256
// numbers, dumpdirs) and PAX local headers, values kept as bytes (SCHILY.xattr.*
// and LIBARCHIVE.xattr.* become `xattrs`). Global PAX headers are checked but
// not applied, as Go's archive/tar (and so Docker, containerd, podman) does.
// Sparse files and multi-volume entries are refused as Unsupported; entries of
// unknown types are skipped with a warning.
//
// Three layers, each usable on its own:
//  - TarHeaderDecoder: header blocks (and the data of metadata headers) in,
//    entries out. For readers that seek past data (oci-archive.ts's TarIndex).
//  - TarParser: a push parser over a byte stream: entries go to a handler, whose
//    sink (if it returns one) gets the entry's data, synchronously.
//  - readTar: feeds a Readable into a TarParser, awaiting an optional callback
//    between chunks (backpressure), leaving the stream undestroyed on errors.
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { TAR_BLOCK, PAX_FIELD_KEYS, SCHILY_XATTR, LIBARCHIVE_XATTR, type TarEntry, type TarType } from './entry.js';

export interface TarReadOptions {
  /** Names the input in errors ("layer sha256:…"); errors are not prefixed without it. */
  what?: string;
  /** Told about what is read but not understood (unknown types, non-UTF-8 names). */
  warn?: (msg: string) => void;
}

const NOT_TAR = 'not a tar archive (or compressed in a format tspod does not know)';

/** A metadata header's data (PAX, GNU long name) larger than this is refused. */
const MAX_META = 16 << 20;

function q(s: string): string {
  return JSON.stringify(s);
}

function cstr(block: Buffer, off: number, len: number): Buffer {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

const TYPES: Record<string, TarType> = {
  '0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  D: 'dir', // GNU dumpdir: a directory whose data lists its contents
};

/** What one header block announces. `bodySize` bytes of data (then padding) follow it. */
export type TarHeader =
  | { kind: 'meta'; bodySize: number }
  | { kind: 'entry'; entry: TarEntry; bodySize: number }
  | { kind: 'skip'; bodySize: number };

/**
 * Header state across blocks: GNU long names and PAX local headers apply to the
 * next entry. Feed every non-zero header block to header(); after a 'meta'
 * result, feed its data to meta().
 */
export class TarHeaderDecoder {
  private pendingMeta?: string;
  private localPax = new Map<string, Buffer>();
  private longName?: Buffer;
  private longLink?: Buffer;
  /** Path of the last entry seen, for error messages. */
  current?: string;

  constructor(private readonly opts: TarReadOptions = {}) {}

  bad(msg: string): TspodError {
    return new TspodError(ErrorCode.BadFormat, this.opts.what ? `${this.opts.what}: ${msg}` : msg);
  }

  private unsupported(msg: string): TspodError {
    return new TspodError(ErrorCode.Unsupported, this.opts.what ? `${this.opts.what}: ${msg}` : msg);
  }

  /** Decodes one (non-zero) header block found at byte `offset` of the archive. */
  header(block: Buffer, offset: number): TarHeader {
    // The checksum treats its own field as spaces; some old tars summed signed bytes.
    let sum = 8 * 0x20;
    let ssum = 8 * 0x20;
    for (let i = 0; i < TAR_BLOCK; i++) {
      if (i === 148) i = 156;
      const b = block[i];
      sum += b;
      ssum += b > 127 ? b - 256 : b;
    }
    let stored: number;
    try {
      stored = this.number(block, 148, 8, offset);
    } catch {
      stored = -1;
    }
    if (stored !== sum && stored !== ssum) {
      throw this.bad(
        offset === 0
          ? `${NOT_TAR}: its first block is not a valid tar archive header`
          : `not a valid tar archive: bad header checksum at byte ${offset}`,
      );
    }
    const flag = block[156];
    const type = flag === 0 ? '0' : String.fromCharCode(flag);
    const headerSize = this.number(block, 124, 12, offset);

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (headerSize > MAX_META) throw this.bad(`tar ${type} header of ${headerSize} bytes is too large`);
      if (headerSize < 0) throw this.bad(`tar ${type} header with a negative size at byte ${offset}`);
      this.pendingMeta = type;
      return { kind: 'meta', bodySize: headerSize };
    }

    const pax = (key: string): Buffer | undefined => {
      const v = this.localPax.get(key);
      return v !== undefined && v.length > 0 ? v : undefined;
    };
    const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
    const gnuOrUstar = ustar || block.toString('latin1', 257, 262) === 'ustar';
    let nameBuf = cstr(block, 0, 100);
    if (ustar) {
      const prefix = cstr(block, 345, 155);
      if (prefix.length > 0) nameBuf = Buffer.concat([prefix, Buffer.from('/'), nameBuf]);
    }
    const name = this.text(pax('path') ?? this.longName ?? nameBuf, 'entry name');
    this.current = name;
    const linkpath = this.text(pax('linkpath') ?? this.longLink ?? cstr(block, 157, 100), 'link target');
    const paxNum = (key: string): number | undefined => {
      const v = pax(key);
      if (v === undefined) return undefined;
      const x = Number(v.toString('latin1'));
      if (!Number.isFinite(x)) throw this.bad(`entry ${q(name)}: invalid PAX ${key} ${q(v.toString('latin1'))}`);
      return x;
    };
    const size = paxNum('size') ?? headerSize;
    if (!Number.isSafeInteger(size) || size < 0) throw this.bad(`entry ${q(name)}: bad size ${size}`);
    const mtime = paxNum('mtime') ?? this.number(block, 136, 12, offset);
    const entryType = TYPES[type];
    if (!entryType) {
      if (type === 'S' || type === 'M' || type === 'N') {
        const what = type === 'S' ? 'sparse file' : type === 'M' ? 'multi-volume continuation' : 'long-name (old format)';
        throw this.unsupported(`entry ${q(name)} is a GNU ${what} entry, which tspod does not support`);
      }
      this.reset();
      this.opts.warn?.(`entry ${q(name)} has unknown tar type ${q(type)}; skipped`);
      return { kind: 'skip', bodySize: size };
    }
    const isFile = entryType === 'file' && !(flag === 0 && name.endsWith('/'));
    const entry: TarEntry = {
      path: name,
      type: isFile ? 'file' : entryType === 'file' ? 'dir' : entryType,
      mode: this.number(block, 100, 8, offset) & 0o7777,
      uid: paxNum('uid') ?? this.number(block, 108, 8, offset),
      gid: paxNum('gid') ?? this.number(block, 116, 8, offset),
      size: isFile ? size : 0,
      mtime,
      atime: paxNum('atime') ?? mtime,
      linkpath,
      uname: pax('uname')?.toString('utf8') ?? (gnuOrUstar ? cstr(block, 265, 32).toString('utf8') : ''),
      gname: pax('gname')?.toString('utf8') ?? (gnuOrUstar ? cstr(block, 297, 32).toString('utf8') : ''),
      devmajor: entryType === 'char' || entryType === 'block' ? this.number(block, 329, 8, offset) : 0,
      devminor: entryType === 'char' || entryType === 'block' ? this.number(block, 337, 8, offset) : 0,
      xattrs: this.xattrs(name),
      pax: new Map(),
    };
    for (const [k, v] of this.localPax) {
      if (v.length > 0 && !PAX_FIELD_KEYS.has(k) && !k.startsWith(SCHILY_XATTR) && !k.startsWith(LIBARCHIVE_XATTR)) entry.pax.set(k, v);
    }
    this.reset();
    // Only regular files and GNU dumpdirs have data; the size of other types is
    // ignored, as Go's archive/tar does.
    return { kind: 'entry', entry, bodySize: isFile || type === 'D' ? size : 0 };
  }

  /** The data of the metadata header that header() announced, found at byte `offset`. */
  meta(body: Buffer, offset: number): void {
    const type = this.pendingMeta;
    this.pendingMeta = undefined;
    if (type === 'L') this.longName = cstr(body, 0, body.length);
    else if (type === 'K') this.longLink = cstr(body, 0, body.length);
    else if (type === 'x' || type === 'g') {
      const records = this.paxRecords(body, offset);
      // Global headers ('g') are checked but not applied.
      if (type === 'g') return;
      for (const [k, v] of records) {
        if (k.startsWith('GNU.sparse.')) throw this.unsupported(`the archive has a sparse file (PAX ${k}), which tspod does not support`);
        this.localPax.set(k, v);
      }
    }
  }

  private reset(): void {
    if (this.localPax.size > 0) this.localPax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
  }

  /** PAX extended header records: "<len> <key>=<value>\n", values kept as bytes. */
  private paxRecords(body: Buffer, offset: number): Array<[string, Buffer]> {
    const out: Array<[string, Buffer]> = [];
    let i = 0;
    while (i < body.length) {
      if (body[i] === 0) break; // NUL padding
      const sp = body.indexOf(0x20, i);
      const lenText = sp < 0 ? '' : body.toString('latin1', i, sp);
      const len = /^[0-9]{1,8}$/.test(lenText) ? parseInt(lenText, 10) : NaN;
      if (!(len > sp - i + 1) || i + len > body.length || body[i + len - 1] !== 0x0a) {
        throw this.bad(`malformed PAX extended header at byte ${offset}`);
      }
      const rec = body.subarray(sp + 1, i + len - 1);
      const eq = rec.indexOf(0x3d);
      if (eq <= 0) throw this.bad(`malformed PAX record at byte ${offset}`);
      out.push([rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1))]);
      i += len;
    }
    return out;
  }

  private xattrs(name: string): Map<string, Buffer> {
    const found = new Map<string, Buffer>();
    for (const [k, v] of this.localPax) {
      if (k.startsWith(SCHILY_XATTR)) {
        // (an empty value is a real, empty attribute value)
        if (k.length > SCHILY_XATTR.length) found.set(k.slice(SCHILY_XATTR.length), v);
      } else if (k.startsWith(LIBARCHIVE_XATTR)) {
        let xname: string;
        try {
          xname = decodeURIComponent(k.slice(LIBARCHIVE_XATTR.length));
        } catch {
          throw this.bad(`entry ${q(name)}: malformed PAX record ${q(k)}`);
        }
        if (xname.length > 0 && !found.has(xname) && !this.localPax.has(SCHILY_XATTR + xname)) {
          found.set(xname, Buffer.from(v.toString('latin1'), 'base64'));
        }
      }
    }
    return found;
  }

  private text(b: Buffer, what: string): string {
    if (b.includes(0)) throw this.bad(`${what} contains a NUL byte`);
    if (!isUtf8(b)) this.opts.warn?.(`${what} ${q(b.toString('latin1'))} is not UTF-8; read with replacement characters`);
    return b.toString('utf8');
  }

  /** A numeric header field: octal text, or GNU base-256 (high bit set). */
  private number(block: Buffer, off: number, len: number, offset: number): number {
    const first = block[off];
    if (first & 0x80) {
      let v = BigInt(first & 0x7f) - (first & 0x40 ? 0x80n : 0n); // 0xff... is negative
      for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i]);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw this.bad(`number out of range in tar header at byte ${offset}`);
      return Number(v);
    }
    let i = off;
    const end = off + len;
    while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
    let v = 0;
    while (i < end && block[i] >= 0x30 && block[i] <= 0x37) {
      v = v * 8 + (block[i] - 0x30);
      i++;
    }
    while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
    if (i !== end) throw this.bad(`invalid number in tar header at byte ${offset}`);
    return v;
  }
}

/** Where an entry's data goes: `size` bytes in write() calls, then end(). */
export interface TarBodySink {
  write(data: Buffer): void;
  end(): void;
}

export interface TarEntryHandler {
  /** One entry; its data goes to the sink returned (or is dropped). Errors thrown stop the parse. */
  entry(e: TarEntry): TarBodySink | null | void;
}

const DISCARD: TarBodySink = { write() {}, end() {} };

/**
 * A push parser: push() the archive's bytes in chunks of any size, then end().
 * Everything after the end-of-archive blocks is accepted and ignored; a missing
 * end-of-archive is accepted (as GNU tar does); a truncated archive is not.
 */
export class TarParser {
  private readonly decoder: TarHeaderDecoder;
  private partial: Buffer | null = null;
  private state: 'header' | 'body' | 'eof' = 'header';
  private remain = 0;
  private size = 0;
  private pad = 0;
  private sink: TarBodySink | null = null;
  private metaBufs: Buffer[] | null = null;
  private metaOffset = 0;
  private sawZeroBlock = false;
  /** Bytes of the archive consumed so far. */
  offset = 0;

  constructor(
    private readonly handler: TarEntryHandler,
    opts: TarReadOptions = {},
  ) {
    this.decoder = new TarHeaderDecoder(opts);
  }

  /** Path of the entry being read, for error messages. */
  get current(): string | undefined {
    return this.decoder.current;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.state === 'eof') return; // padding after the end-of-archive blocks
      if (this.state === 'header') {
        let block: Buffer;
        if (this.partial) {
          const take = Math.min(TAR_BLOCK - this.partial.length, n - pos);
          this.partial = Buffer.concat([this.partial, chunk.subarray(pos, pos + take)]);
          pos += take;
          if (this.partial.length < TAR_BLOCK) return;
          block = this.partial;
          this.partial = null;
        } else if (n - pos >= TAR_BLOCK) {
          block = chunk.subarray(pos, pos + TAR_BLOCK);
          pos += TAR_BLOCK;
        } else {
          this.partial = Buffer.from(chunk.subarray(pos));
          return;
        }
        this.header(block);
        this.offset += TAR_BLOCK;
        continue;
      }
      if (this.remain > 0) {
        const take = Math.min(this.remain, n - pos);
        const data = chunk.subarray(pos, pos + take);
        pos += take;
        this.remain -= take;
        this.offset += take;
        if (this.metaBufs) this.metaBufs.push(Buffer.from(data));
        else this.sink!.write(data);
        if (this.remain === 0) this.bodyDone();
      } else {
        const take = Math.min(this.pad, n - pos);
        pos += take;
        this.pad -= take;
        this.offset += take;
        if (this.pad === 0) this.state = 'header';
      }
    }
  }

  /** The input ended: refuses a truncated archive. */
  end(): void {
    if (this.state === 'body' && (this.remain > 0 || this.metaBufs)) {
      throw this.decoder.bad(`truncated tar: entry ${q(this.current ?? '')} ends after ${this.size - this.remain} of its ${this.size} bytes`);
    }
    if (this.partial && !this.partial.every((b) => b === 0)) {
      throw this.decoder.bad(
        this.offset === 0
          ? `${NOT_TAR}: its ${this.partial.length} bytes are not a valid tar archive`
          : `truncated tar: incomplete header at byte ${this.offset}`,
      );
    }
  }

  private startBody(size: number, sink: TarBodySink | null): void {
    this.size = size;
    this.remain = size;
    this.pad = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
    this.sink = sink;
    if (size === 0) this.bodyDone();
    else this.state = 'body';
  }

  private bodyDone(): void {
    if (this.metaBufs) {
      const bufs = this.metaBufs;
      this.metaBufs = null;
      this.decoder.meta(Buffer.concat(bufs), this.metaOffset);
    } else {
      const sink = this.sink!;
      this.sink = null;
      sink.end();
    }
    this.state = this.pad > 0 ? 'body' : 'header';
  }

  private header(block: Buffer): void {
    if (isZeroBlock(block)) {
      if (this.sawZeroBlock) this.state = 'eof';
      this.sawZeroBlock = true;
      return;
    }
    if (this.sawZeroBlock) throw this.decoder.bad(`not a valid tar archive: data after an end-of-archive block at byte ${this.offset}`);
    const h = this.decoder.header(block, this.offset);
    if (h.kind === 'meta') {
      this.metaBufs = [];
      this.metaOffset = this.offset;
      this.startBody(h.bodySize, null);
      return;
    }
    if (h.kind === 'skip') {
      this.startBody(h.bodySize, DISCARD);
      return;
    }
    const sink = this.handler.entry(h.entry) ?? DISCARD;
    if (h.entry.size === h.bodySize) {
      this.startBody(h.bodySize, sink);
    } else {
      // data that is not the entry's content (a dumpdir's listing) is dropped
      sink.end();
      this.startBody(h.bodySize, DISCARD);
    }
  }
}

/**
 * Feeds `src` into `parser` to the end (including anything after the archive's
 * end, so that a hash of the input sees all of it), then checks it was whole.
 * `between`, if given, is awaited after each chunk (for the handler's
 * backpressure). On failure `src` is left as it is, not destroyed.
 */
export async function readTar(src: Readable, parser: TarParser, between?: () => Promise<void> | void): Promise<void> {
  for await (const chunk of src.iterator({ destroyOnReturn: false })) {
    parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    if (between) await between();
  }
  parser.end();
}
