// tspod's tar header encoder (ACI export, and the rootfs tar parseAciStream
// re-emits). ustar, with a PAX header first when something does not fit: long or
// non-ASCII names, big numbers, fractional times, long uname/gname, xattrs (as
// SCHILY.xattr.*, values as bytes) and any PAX records the entry carries.
//
// node-tar's Header and Pax classes are not used: Pax knows only its fixed set
// of keys (no xattrs, no carried records) and builds records as JS strings, so a
// binary value such as security.capability would not survive.
import path from 'node:path';
import { TAR_BLOCK, PAX_FIELD_KEYS, SCHILY_XATTR, LIBARCHIVE_XATTR, type TarEntry, type TarType } from './entry.js';

/** The two zero blocks that end an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * TAR_BLOCK);

/** Zeros that pad `size` bytes of data to a whole block. */
export function tarPadding(size: number): Buffer {
  const rem = size % TAR_BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(TAR_BLOCK - rem);
}

/** A fresh entry with sensible defaults, for writers. */
export function tarEntry(fields: Partial<TarEntry> & Pick<TarEntry, 'path' | 'type'>): TarEntry {
  const mtime = fields.mtime ?? 0;
  return {
    mode: fields.type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime,
    atime: mtime,
    linkpath: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    pax: new Map(),
    ...fields,
  };
}

const FLAGS: Record<TarType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const OCTAL_MAX_8 = 0o7777777;
const OCTAL_MAX_12 = 0o77777777777;

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function writeString(block: Buffer, off: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  b.copy(block, off, 0, Math.min(b.length, len));
}

function writeNumber(block: Buffer, off: number, len: number, n: number): void {
  const v = Math.max(0, Math.floor(n));
  if (v <= (len === 12 ? OCTAL_MAX_12 : OCTAL_MAX_8)) {
    block.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
    block[off + len - 1] = 0;
    return;
  }
  // base-256
  let x = v;
  for (let i = len - 1; i > 0; i--) {
    block[off + i] = x % 256;
    x = Math.floor(x / 256);
  }
  block[off] = 0x80;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  // The length counts its own digits.
  let digits = String(body.length).length;
  if (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits), 'latin1'), body]);
}

/** Splits a path into ustar's prefix (155) and name (100), or undefined if it cannot. */
function splitUstarPath(p: string): { prefix: string; name: string } | undefined {
  const bytes = Buffer.byteLength(p);
  if (bytes <= 100) return { prefix: '', name: p };
  if (bytes > 256) return undefined;
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (name === '') return undefined;
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  return undefined;
}

function ustarBlock(e: TarEntry, flag: string, pathField: { prefix: string; name: string }, linkField: string, size: number): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  writeString(block, 0, 100, pathField.name);
  writeNumber(block, 100, 8, e.mode & 0o7777);
  writeNumber(block, 108, 8, e.uid);
  writeNumber(block, 116, 8, e.gid);
  writeNumber(block, 124, 12, size);
  writeNumber(block, 136, 12, e.mtime);
  block[156] = flag.charCodeAt(0);
  writeString(block, 157, 100, linkField);
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  writeString(block, 265, 32, e.uname);
  writeString(block, 297, 32, e.gname);
  if (e.type === 'char' || e.type === 'block') {
    writeNumber(block, 329, 8, e.devmajor);
    writeNumber(block, 337, 8, e.devminor);
  }
  writeString(block, 345, 155, pathField.prefix);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/**
 * The header block(s) for one entry: a PAX header first when something does not
 * fit ustar or when the entry has xattrs or PAX records. The caller writes
 * `e.size` bytes of data and tarPadding(e.size) after it.
 */
export function encodeTarHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  let pathField = isAscii(e.path) ? splitUstarPath(e.path) : undefined;
  if (!pathField) {
    records.push(paxRecord('path', Buffer.from(e.path, 'utf8')));
    const ascii = e.path.replace(/[^\x20-\x7e]/g, '_');
    pathField = { prefix: '', name: ascii.slice(Math.max(0, ascii.length - 100)) };
  }
  let linkField = e.linkpath;
  if (Buffer.byteLength(e.linkpath) > 100 || !isAscii(e.linkpath)) {
    records.push(paxRecord('linkpath', Buffer.from(e.linkpath, 'utf8')));
    linkField = '';
  }
  if (e.size > OCTAL_MAX_12) records.push(paxRecord('size', Buffer.from(String(e.size))));
  if (e.uid > OCTAL_MAX_8) records.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > OCTAL_MAX_8) records.push(paxRecord('gid', Buffer.from(String(e.gid))));
  for (const [key, value] of [
    ['uname', e.uname],
    ['gname', e.gname],
  ] as const) {
    if (Buffer.byteLength(value) > 32 || !isAscii(value)) records.push(paxRecord(key, Buffer.from(value, 'utf8')));
  }
  if (!e.pax.has('mtime') && (!Number.isInteger(e.mtime) || e.mtime < 0 || e.mtime > OCTAL_MAX_12)) {
    records.push(paxRecord('mtime', Buffer.from(String(e.mtime))));
  }
  const extra = new Map<string, Buffer>();
  for (const [key, value] of e.pax) {
    if (!PAX_FIELD_KEYS.has(key) && !key.startsWith(SCHILY_XATTR) && !key.startsWith(LIBARCHIVE_XATTR)) extra.set(key, value);
  }
  for (const [name, value] of e.xattrs) extra.set(SCHILY_XATTR + name, value);
  for (const key of [...extra.keys()].sort()) records.push(paxRecord(key, extra.get(key)!));
  const header = ustarBlock(e, FLAGS[e.type], pathField, linkField, e.size);
  if (records.length === 0) return header;
  const data = Buffer.concat(records);
  const base = path.posix.basename(e.path.replace(/\/+$/, '')).replace(/[^\x20-\x7e]/g, '_') || 'root';
  const paxHeaderEntry = tarEntry({ ...e, path: `PaxHeaders.0/${base}`.slice(0, 100), type: 'file', mode: 0o644, size: data.length });
  const paxHeader = ustarBlock(paxHeaderEntry, 'x', { prefix: '', name: paxHeaderEntry.path }, '', data.length);
  return Buffer.concat([paxHeader, data, tarPadding(data.length), header]);
}
