// appc images (ACIs): opening them from files and URLs, reading them as one
// stream, validating their manifests, and the small tar codec that ACI reading
// and writing (store/export-aci.ts) share.
//
// An ACI is a tar with exactly two top-level entries, `manifest` and `rootfs/`
// (RKT-REFERENCE 6.2). The importer streams an ACI once: file → decompress →
// sha512 → parseAciStream, which hands on the `rootfs/` entries as a tar of their
// own (prefix stripped) for the layer unpacker and keeps the manifest.
//
// The tar codec is ours rather than node-tar's because entries must be re-emitted
// with every PAX record intact (xattrs as SCHILY.xattr.*, sub-second times, long
// names), which node-tar's writer drops.
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import fetch, { type Response } from 'node-fetch';
import { TspodError, ErrorCode, errnoCode } from '../../native/errors.js';
import { log } from '../../native/log.js';
import type { InsecureOptions } from '../insecure.js';
import type { AppcImageManifest } from '../manifest/appc.js';
import type { AciCandidate } from './source.js';
import { trustedCertificates } from './tls.js';

// ---------------------------------------------------------------------------
// Opening an ACI
// ---------------------------------------------------------------------------

export interface OpenAciOptions {
  insecure?: Pick<InsecureOptions, 'http' | 'tls'>;
  signal?: AbortSignal;
}

/**
 * An ACI file (plain, gzip, bzip2 or xz: the importer detects which) or an
 * http(s) URL. Plain HTTP needs --insecure-options=http.
 */
export async function openAci(pathOrUrl: string, opts: OpenAciOptions = {}): Promise<AciCandidate> {
  if (/^https?:\/\//i.test(pathOrUrl)) return openAciUrl(pathOrUrl, opts);
  const file = /^file:\/\//i.test(pathOrUrl) ? fileURLToPath(pathOrUrl) : pathOrUrl;
  return openAciFile(file);
}

async function openAciFile(file: string): Promise<AciCandidate> {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(abs);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new TspodError(ErrorCode.NotFound, `ACI file ${JSON.stringify(file)} does not exist`);
    }
    if (code === 'EACCES') throw new TspodError(ErrorCode.Permission, `cannot read ACI file ${JSON.stringify(file)}: permission denied`);
    throw e;
  }
  if (st.isDirectory()) {
    throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(file)} is a directory, not an ACI file`, {
      hint: `for an OCI image layout use oci:${file}`,
    });
  }
  if (!st.isFile()) throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(file)} is not a regular file`);
  await fs.promises.access(abs, fs.constants.R_OK).catch(() => {
    throw new TspodError(ErrorCode.Permission, `cannot read ACI file ${JSON.stringify(file)}: permission denied`);
  });
  return {
    kind: 'aci',
    source: abs,
    size: st.size,
    open: async () => fs.createReadStream(abs, { highWaterMark: 1 << 20 }),
  };
}

function refuseHttp(url: string, opts: OpenAciOptions, redirectedFrom?: string): void {
  if (/^http:/i.test(url) && !opts.insecure?.http) {
    throw new TspodError(
      ErrorCode.BadInput,
      redirectedFrom ? `refusing to follow the redirect from ${redirectedFrom} to plain HTTP ${url}` : `refusing to fetch ${url} over plain HTTP`,
      { hint: 'use https, or allow it with --insecure-options=http' },
    );
  }
}

const MAX_REDIRECTS = 10;

async function openAciUrl(url: string, opts: OpenAciOptions): Promise<AciCandidate> {
  refuseHttp(url, opts);
  const httpAgent = new http.Agent({ keepAlive: false });
  const httpsAgent = new https.Agent({ keepAlive: false, rejectUnauthorized: !opts.insecure?.tls, ca: trustedCertificates() });
  const destroyAgents = () => {
    httpAgent.destroy();
    httpsAgent.destroy();
  };
  log().debug(`remote fetching from URL ${JSON.stringify(url)}`);
  let res: Response;
  let current = url;
  try {
    // Redirects are followed by hand so that https cannot be redirected to http.
    for (let hops = 0; ; hops++) {
      try {
        res = await fetch(current, {
          agent: (u: URL) => (u.protocol === 'http:' ? httpAgent : httpsAgent),
          redirect: 'manual',
          signal: opts.signal as never,
          headers: { accept: 'application/octet-stream, */*' },
        });
      } catch (e) {
        const cause = e instanceof Error ? e.message : String(e);
        const tlsHint = /certificate|self.signed|CERT_/i.test(cause) ? 'if you trust this server, use --insecure-options=tls' : undefined;
        throw new TspodError(ErrorCode.Network, `unable to fetch image from ${current}: ${cause}`, { hint: tlsHint, cause: e });
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) break;
      res.body?.resume();
      if (hops >= MAX_REDIRECTS) throw new TspodError(ErrorCode.Network, `unable to fetch image from ${url}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, current).toString();
      refuseHttp(next, opts, current);
      current = next;
    }
    if (res.status !== 200 || !res.body) {
      res.body?.resume();
      throw new TspodError(
        res.status === 404 ? ErrorCode.NotFound : ErrorCode.Network,
        `unable to fetch image from ${current}: HTTP ${res.status} ${res.statusText}`.trimEnd(),
      );
    }
  } catch (e) {
    destroyAgents();
    throw e;
  }
  const body = res.body as Readable;
  const length = Number(res.headers.get('content-length') ?? '');
  let opened = false;
  log().debug(`fetching image from ${url}`);
  return {
    kind: 'aci',
    source: url,
    size: Number.isFinite(length) && length > 0 ? length : undefined,
    open: async () => {
      if (opened) throw new Error(`ACI ${url} can only be opened once`);
      opened = true;
      return body;
    },
    close: async () => {
      if (!body.readableEnded) body.destroy();
      destroyAgents();
    },
  };
}

// ---------------------------------------------------------------------------
// Reading an ACI stream
// ---------------------------------------------------------------------------

/** appc does not bound the manifest; this keeps a hostile one from filling memory. */
const MAX_MANIFEST_BYTES = 16 << 20;

export interface AciStream {
  /** The `rootfs/` entries as a tar of their own, with `rootfs/` stripped (`rootfs/` itself becomes `./`). */
  rootfsTar: Readable;
  /** The validated manifest, once the whole ACI has been read. */
  manifest: Promise<AppcImageManifest>;
}

/**
 * Reads an uncompressed ACI tar once. Everything after the end-of-archive blocks
 * is read too (and ignored) so that a hash of the input sees all of it.
 * On any error both the rootfs stream (destroyed) and the manifest promise
 * (rejected) carry it; the input is left as it is.
 */
export function parseAciStream(tar: Readable, source?: string): AciStream {
  /** `ACI /x/y.aci` or just `ACI`. */
  const aci = source ? `ACI ${source}` : 'ACI';
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let resolveManifest!: (m: AppcImageManifest) => void;
  let rejectManifest!: (e: unknown) => void;
  const manifest = new Promise<AppcImageManifest>((res, rej) => {
    resolveManifest = res;
    rejectManifest = rej;
  });
  manifest.catch(() => undefined); // the caller may only look after the rootfs stream failed
  out.on('error', () => undefined); // the manifest promise carries every error: an unread stream must not crash

  const run = async () => {
    const reader = new TarReader(tar);
    let manifestBytes: Buffer | undefined;
    let sawRootfs = false;
    for (;;) {
      const entry = await reader.next();
      if (!entry) break;
      const p = topLevelPath(entry.path);
      if (p === '') continue; // `./`, the archive's own root
      if (p === 'manifest') {
        if (manifestBytes) throw new TspodError(ErrorCode.BadFormat, `${aci} has more than one manifest entry`);
        if (entry.type !== 'file') throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is not a regular file`);
        if (entry.size > MAX_MANIFEST_BYTES) {
          throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is ${entry.size} bytes; refusing manifests over ${MAX_MANIFEST_BYTES}`);
        }
        manifestBytes = await collect(reader.data());
        continue;
      }
      if (p === 'rootfs' || p.startsWith('rootfs/')) {
        sawRootfs = true;
        await writeOut(out, rootfsHeader(entry, p, aci));
        for await (const chunk of reader.data()) await writeOut(out, chunk);
        const pad = tarPadding(entry.size);
        if (pad.length) await writeOut(out, pad);
        continue;
      }
      const top = p.split('/')[0];
      throw new TspodError(ErrorCode.BadFormat, `${aci} has an unexpected top-level entry ${JSON.stringify(top)}`, {
        hint: 'an ACI holds only manifest and rootfs/',
      });
    }
    if (!manifestBytes) throw new TspodError(ErrorCode.BadFormat, `${aci} has no manifest`);
    if (!sawRootfs) throw new TspodError(ErrorCode.BadFormat, `${aci} has no rootfs/ directory`);
    let raw: unknown;
    try {
      raw = JSON.parse(manifestBytes.toString('utf8'));
    } catch (e) {
      throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is not valid JSON (${(e as Error).message})`);
    }
    const m = validateAciManifest(raw, source ?? 'the ACI');
    await writeOut(out, TAR_END);
    out.end();
    await reader.drainRest();
    resolveManifest(m);
  };
  run().catch((e: unknown) => {
    // Tar-level errors do not know which file they are about.
    const err =
      e instanceof TspodError && source && !e.message.includes(source)
        ? new TspodError(e.code, `${aci}: ${e.message}`, { hint: e.hint, cause: e })
        : e;
    rejectManifest(err);
    out.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return { rootfsTar: out, manifest };
}

/** `./rootfs/x` → `rootfs/x`, `/manifest` → `manifest`, `./` → ``. */
function topLevelPath(p: string): string {
  let s = p;
  for (;;) {
    if (s.startsWith('./')) s = s.slice(2);
    else if (s.startsWith('/')) s = s.slice(1);
    else break;
  }
  if (s === '.') return '';
  return s;
}

function rootfsHeader(entry: TarEntry, p: string, source: string): Buffer {
  let inner = p === 'rootfs' ? '' : p.slice('rootfs/'.length);
  if (inner === '' || inner === '/') {
    if (entry.type !== 'dir') throw new TspodError(ErrorCode.BadFormat, `${source}: rootfs is not a directory`);
    inner = './';
  }
  let linkpath = entry.linkpath;
  if (entry.type === 'hardlink') {
    const target = topLevelPath(entry.linkpath);
    if (!target.startsWith('rootfs/') || target.length === 'rootfs/'.length) {
      throw new TspodError(ErrorCode.UnsafeLayer, `${source}: ${p} is a hard link to ${JSON.stringify(entry.linkpath)}, outside rootfs/`);
    }
    linkpath = target.slice('rootfs/'.length);
  }
  return encodeTarHeader({ ...entry, path: inner, linkpath });
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** Writes with backpressure; fails instead of hanging when the reader went away. */
function writeOut(out: PassThrough, chunk: Buffer): Promise<void> {
  if (out.destroyed) return Promise.reject(new Error('rootfs reader closed'));
  if (out.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('rootfs reader closed'));
    out.on('drain', onDrain);
    out.on('close', onClose);
  });
}

// ---------------------------------------------------------------------------
// ACI manifests
// ---------------------------------------------------------------------------

/** appc's table of known os/arch label values (schema/types/labels.go). */
const APPC_OS_ARCH: Record<string, string[]> = {
  darwin: ['x86_64', 'i386'],
  freebsd: ['amd64', 'i386', 'arm'],
  linux: ['amd64', 'i386', 'aarch64', 'aarch64_be', 'armv6l', 'armv7l', 'armv7b', 'ppc64', 'ppc64le', 's390x'],
};

export const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;
const AC_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

function bad(source: string, detail: string): TspodError {
  return new TspodError(ErrorCode.BadFormat, `invalid image manifest in ${source}: ${detail}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkNameValues(v: unknown, what: string, source: string): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw bad(source, `${what} must be a list`);
  for (const item of v) {
    if (!isObject(item) || typeof item.name !== 'string' || typeof item.value !== 'string') {
      throw bad(source, `every entry of ${what} needs a string name and value`);
    }
  }
}

function checkStrings(v: unknown, what: string, source: string): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw bad(source, `${what} must be a list of strings`);
}

/**
 * Checks an ACI manifest against the appc schema (what appc's Go types reject
 * on unmarshal) and returns it typed. Host os/arch is checked separately, at
 * prepare time as rkt does: see checkAciPlatform.
 */
export function validateAciManifest(raw: unknown, source: string): AppcImageManifest {
  if (!isObject(raw)) throw bad(source, 'the manifest is not a JSON object');
  if (raw.acKind !== 'ImageManifest') throw bad(source, 'missing or bad acKind (must be "ImageManifest")');
  if (typeof raw.acVersion !== 'string' || raw.acVersion === '') throw bad(source, 'acVersion must be set');
  if (!semver.valid(raw.acVersion)) throw bad(source, `bad acVersion ${JSON.stringify(raw.acVersion)}: not a semantic version`);
  if (typeof raw.name !== 'string' || raw.name === '') throw bad(source, 'name must be set');
  if (!AC_IDENTIFIER.test(raw.name)) {
    throw bad(source, `bad name ${JSON.stringify(raw.name)}: an AC Identifier holds only lower case letters, digits and "-._~/", starting and ending with a letter or digit`);
  }

  checkNameValues(raw.labels, 'labels', source);
  const labels = (raw.labels ?? []) as Array<{ name: string; value: string }>;
  const seen = new Map<string, string>();
  for (const l of labels) {
    if (!AC_IDENTIFIER.test(l.name)) throw bad(source, `bad label name ${JSON.stringify(l.name)}`);
    if (l.name === 'name') throw bad(source, 'invalid label name: "name"');
    if (seen.has(l.name)) throw bad(source, `duplicate labels of name ${JSON.stringify(l.name)}`);
    seen.set(l.name, l.value);
  }
  const osArch = checkOsArch(seen, APPC_OS_ARCH);
  if (osArch) throw bad(source, osArch);

  checkNameValues(raw.annotations, 'annotations', source);
  for (const a of (raw.annotations ?? []) as Array<{ name: string }>) {
    if (!AC_IDENTIFIER.test(a.name)) throw bad(source, `bad annotation name ${JSON.stringify(a.name)}`);
  }
  checkStrings(raw.pathWhitelist, 'pathWhitelist', source);
  if (raw.dependencies !== undefined && raw.dependencies !== null) {
    if (!Array.isArray(raw.dependencies)) throw bad(source, 'dependencies must be a list');
    for (const d of raw.dependencies) {
      if (!isObject(d) || typeof d.imageName !== 'string' || !AC_IDENTIFIER.test(d.imageName)) {
        throw bad(source, 'every dependency needs an imageName that is an AC Identifier');
      }
      if (d.imageID !== undefined && typeof d.imageID !== 'string') throw bad(source, 'a dependency imageID must be a string');
      checkNameValues(d.labels, 'dependency labels', source);
      if (d.size !== undefined && typeof d.size !== 'number') throw bad(source, 'a dependency size must be a number');
    }
  }
  if (raw.app !== undefined && raw.app !== null) validateApp(raw.app, source);
  return raw as unknown as AppcImageManifest;
}

function validateApp(app: unknown, source: string): void {
  if (!isObject(app)) throw bad(source, 'app must be an object');
  checkStrings(app.exec, 'app.exec', source);
  if (typeof app.user !== 'string' || app.user === '') throw bad(source, 'app.user is required');
  if (typeof app.group !== 'string' || app.group === '') throw bad(source, 'app.group is required');
  if (app.workingDirectory !== undefined && app.workingDirectory !== '') {
    if (typeof app.workingDirectory !== 'string' || !app.workingDirectory.startsWith('/')) {
      throw bad(source, 'app.workingDirectory must be an absolute path');
    }
  }
  if (app.supplementaryGIDs !== undefined && app.supplementaryGIDs !== null) {
    if (!Array.isArray(app.supplementaryGIDs) || app.supplementaryGIDs.some((g) => !Number.isInteger(g) || (g as number) < 0)) {
      throw bad(source, 'app.supplementaryGIDs must be a list of group IDs');
    }
  }
  checkNameValues(app.environment, 'app.environment', source);
  if (app.eventHandlers !== undefined && app.eventHandlers !== null) {
    if (!Array.isArray(app.eventHandlers)) throw bad(source, 'app.eventHandlers must be a list');
    const names = new Set<string>();
    for (const h of app.eventHandlers) {
      if (!isObject(h) || (h.name !== 'pre-start' && h.name !== 'post-stop')) {
        throw bad(source, 'an event handler name must be pre-start or post-stop');
      }
      if (names.has(h.name)) throw bad(source, `only one ${h.name} event handler is allowed`);
      names.add(h.name);
      checkStrings(h.exec, `the ${h.name} event handler's exec`, source);
    }
  }
  if (app.isolators !== undefined && app.isolators !== null) {
    if (!Array.isArray(app.isolators)) throw bad(source, 'app.isolators must be a list');
    for (const i of app.isolators) {
      if (!isObject(i) || typeof i.name !== 'string' || !AC_IDENTIFIER.test(i.name)) throw bad(source, 'every isolator needs a name that is an AC Identifier');
    }
  }
  if (app.mountPoints !== undefined && app.mountPoints !== null) {
    if (!Array.isArray(app.mountPoints)) throw bad(source, 'app.mountPoints must be a list');
    for (const m of app.mountPoints) {
      if (!isObject(m) || typeof m.name !== 'string' || !AC_NAME.test(m.name)) throw bad(source, 'every mount point needs a name that is an AC Name');
      if (typeof m.path !== 'string' || m.path === '') throw bad(source, `mount point ${m.name} needs a path`);
      if (m.readOnly !== undefined && typeof m.readOnly !== 'boolean') throw bad(source, `mount point ${m.name}: readOnly must be true or false`);
    }
  }
  if (app.ports !== undefined && app.ports !== null) {
    if (!Array.isArray(app.ports)) throw bad(source, 'app.ports must be a list');
    for (const p of app.ports) {
      if (!isObject(p) || typeof p.name !== 'string' || !AC_NAME.test(p.name)) throw bad(source, 'every port needs a name that is an AC Name');
      if (typeof p.protocol !== 'string' || p.protocol === '') throw bad(source, `port ${p.name} needs a protocol`);
      if (!Number.isInteger(p.port) || (p.port as number) < 1 || (p.port as number) > 65535) throw bad(source, `port ${p.name}: port must be between 1 and 65535`);
      if (p.count !== undefined && (!Number.isInteger(p.count) || (p.count as number) < 1)) throw bad(source, `port ${p.name}: count must be at least 1`);
    }
  }
}

/** appc's IsValidOSArch: an error text, or undefined when the labels are fine. */
function checkOsArch(labels: Map<string, string>, table: Record<string, string[]>): string | undefined {
  const os = labels.get('os');
  if (os === undefined) return undefined;
  const arches = table[os];
  if (!arches) return `bad os ${JSON.stringify(os)} (must be one of: [${Object.keys(table).sort().join(' ')}])`;
  const arch = labels.get('arch');
  if (arch !== undefined && !arches.includes(arch)) {
    return `bad arch ${JSON.stringify(arch)} for ${os} (must be one of: [${arches.join(' ')}])`;
  }
  return undefined;
}

/** The appc arch names this host runs (rkt's stage0 table narrowed to the host). */
export function hostAppcArches(): string[] {
  switch (process.arch) {
    case 'x64':
      return ['amd64'];
    case 'ia32':
      return ['i386'];
    case 'arm64':
      return ['aarch64'];
    case 'arm':
      return ['armv7l', 'armv6l'];
    case 'ppc64':
      return [osEndianness() === 'LE' ? 'ppc64le' : 'ppc64'];
    case 's390x':
      return ['s390x'];
    default:
      return [process.arch];
  }
}

function osEndianness(): 'LE' | 'BE' {
  const b = new Uint8Array(new Uint16Array([1]).buffer);
  return b[0] === 1 ? 'LE' : 'BE';
}

/**
 * rkt's check before an appc image is prepared: the image must say which os and
 * arch it is for, and they must be this host's. Throws Platform errors with
 * rkt's texts (`missing os label in the image manifest`, `bad os "freebsd" …`).
 */
export function checkAciPlatform(m: Pick<AppcImageManifest, 'labels'>, source?: string): void {
  const labels = new Map((m.labels ?? []).map((l) => [l.name, l.value] as const));
  const where = source ? ` (${source})` : '';
  if (!labels.has('os')) throw new TspodError(ErrorCode.Platform, `missing os label in the image manifest${where}`);
  if (!labels.has('arch')) throw new TspodError(ErrorCode.Platform, `missing arch label in the image manifest${where}`);
  const problem = checkOsArch(labels, { linux: hostAppcArches() });
  if (problem) throw new TspodError(ErrorCode.Platform, `${problem}${where}`);
}

// ---------------------------------------------------------------------------
// Tar codec
// ---------------------------------------------------------------------------

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** As written in the archive (directories usually end in `/`). */
  path: string;
  type: TarType;
  /** Permission bits, setuid/setgid/sticky included. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow the header. */
  size: number;
  /** Seconds since the epoch (fractional when a PAX record said so). */
  mtime: number;
  /** Symlink target, or the hard link's target path in the archive. */
  linkpath: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /**
   * PAX records carried as they are (xattrs as SCHILY.xattr.*, atime, ctime, an
   * exact mtime, …). path, linkpath, size, uid, gid, uname and gname are not
   * here: they are the fields above.
   */
  pax: Map<string, Buffer>;
}

const TYPE_FROM_FLAG: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const FLAG_FROM_TYPE: Record<TarType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

/** Keys that are TarEntry fields rather than carried PAX records. */
const FIELD_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname']);

export const TAR_BLOCK = 512;
/** The two zero blocks that end an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * TAR_BLOCK);

/** Zeros that pad `size` bytes of data to a whole block. */
export function tarPadding(size: number): Buffer {
  const rem = size % TAR_BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(TAR_BLOCK - rem);
}

export function tarPaddedSize(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

function badTar(detail: string): TspodError {
  return new TspodError(ErrorCode.BadFormat, `not a valid tar archive: ${detail}`);
}

function readString(block: Buffer, off: number, len: number): string {
  const end = block.indexOf(0, off);
  return block.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function readNumber(block: Buffer, off: number, len: number, field: string): number {
  if (block[off] & 0x80) {
    // base-256 (GNU/star): big-endian two's complement, high bit of the first byte set
    if (block[off] === 0xff) throw badTar(`negative ${field}`);
    let n = block[off] & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + block[off + i];
    if (!Number.isSafeInteger(n)) throw badTar(`${field} out of range`);
    return n;
  }
  const raw = block.toString('latin1', off, off + len);
  const t = raw.replace(/^ +/, '').replace(/[\0 ].*$/s, '');
  if (t === '') return 0;
  if (!/^[0-7]+$/.test(t)) throw badTar(`bad ${field} field ${JSON.stringify(raw)}`);
  return parseInt(t, 8);
}

function checksumOk(block: Buffer): boolean {
  let stored: number;
  try {
    stored = readNumber(block, 148, 8, 'checksum');
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

interface RawHeader {
  flag: string;
  path: string;
  linkpath: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function decodeHeader(block: Buffer): RawHeader {
  if (!checksumOk(block)) throw badTar('bad header checksum');
  const magic = block.toString('latin1', 257, 263);
  const name = readString(block, 0, 100);
  const prefix = magic === 'ustar\0' ? readString(block, 345, 155) : '';
  return {
    flag: String.fromCharCode(block[156]),
    path: prefix ? `${prefix}/${name}` : name,
    linkpath: readString(block, 157, 100),
    mode: readNumber(block, 100, 8, 'mode') & 0o7777,
    uid: readNumber(block, 108, 8, 'uid'),
    gid: readNumber(block, 116, 8, 'gid'),
    size: readNumber(block, 124, 12, 'size'),
    mtime: readNumber(block, 136, 12, 'mtime'),
    uname: magic.startsWith('ustar') ? readString(block, 265, 32) : '',
    gname: magic.startsWith('ustar') ? readString(block, 297, 32) : '',
    devmajor: magic.startsWith('ustar') ? readNumber(block, 329, 8, 'devmajor') : 0,
    devminor: magic.startsWith('ustar') ? readNumber(block, 337, 8, 'devminor') : 0,
  };
}

/** Parses PAX extended header data: `<len> <key>=<value>\n` records. */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // padding some writers leave
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) throw badTar('bad PAX record');
    const len = Number(data.toString('latin1', pos, sp));
    if (!Number.isInteger(len) || len <= sp - pos + 1 || pos + len > data.length) throw badTar('bad PAX record length');
    const rec = data.subarray(sp + 1, pos + len);
    if (rec[rec.length - 1] !== 0x0a) throw badTar('PAX record not ended by a newline');
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw badTar('PAX record without a key');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1, rec.length - 1)));
    pos += len;
  }
  return out;
}

function paxNumber(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  const n = Number(s);
  if (s === '' || !Number.isFinite(n)) throw badTar(`bad PAX ${key} ${JSON.stringify(s)}`);
  return n;
}

/** Header state spanning several blocks: GNU long names and PAX headers apply to the next entry. */
export class TarHeaderState {
  private global = new Map<string, Buffer>();
  private local?: Map<string, Buffer>;
  private longName?: string;
  private longLink?: string;

  /**
   * Feeds one header block. Returns 'meta' when the block announces metadata
   * for the next entry (the caller reads `size` bytes of data and passes them to
   * `meta`), or the finished entry.
   */
  header(block: Buffer): { kind: 'meta'; flag: string; size: number } | { kind: 'entry'; entry: TarEntry } {
    const h = decodeHeader(block);
    switch (h.flag) {
      case 'x':
      case 'g':
      case 'L':
      case 'K':
        return { kind: 'meta', flag: h.flag, size: h.size };
    }
    const type = TYPE_FROM_FLAG[h.flag];
    if (!type) {
      const what = h.flag === 'S' ? 'GNU sparse file' : h.flag === 'V' ? 'volume label' : `entry type ${JSON.stringify(h.flag)}`;
      throw new TspodError(ErrorCode.Unsupported, `tar entry ${JSON.stringify(h.path)}: unsupported ${what}`);
    }
    const pax = new Map(this.global);
    for (const [k, v] of this.local ?? []) pax.set(k, v);
    const entry: TarEntry = {
      path: this.longName ?? h.path,
      type,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      size: h.size,
      mtime: h.mtime,
      linkpath: this.longLink ?? h.linkpath,
      uname: h.uname,
      gname: h.gname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      pax: new Map(),
    };
    for (const [k, v] of pax) {
      if (v.length === 0) continue; // an empty value unsets a global one
      switch (k) {
        case 'path':
          entry.path = v.toString('utf8');
          break;
        case 'linkpath':
          entry.linkpath = v.toString('utf8');
          break;
        case 'size':
          entry.size = paxNumber(v, k);
          break;
        case 'uid':
          entry.uid = paxNumber(v, k);
          break;
        case 'gid':
          entry.gid = paxNumber(v, k);
          break;
        case 'uname':
          entry.uname = v.toString('utf8');
          break;
        case 'gname':
          entry.gname = v.toString('utf8');
          break;
        case 'mtime':
          entry.mtime = paxNumber(v, k);
          entry.pax.set(k, v);
          break;
        default:
          if (k.startsWith('GNU.sparse.')) {
            throw new TspodError(ErrorCode.Unsupported, `tar entry ${JSON.stringify(entry.path)}: unsupported GNU sparse file`);
          }
          entry.pax.set(k, v);
      }
    }
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw badTar(`bad size for ${JSON.stringify(entry.path)}`);
    this.local = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    return { kind: 'entry', entry };
  }

  /** The data of a metadata header announced by `header`. */
  meta(flag: string, data: Buffer): void {
    switch (flag) {
      case 'x':
        this.local = parsePaxRecords(data);
        break;
      case 'g':
        for (const [k, v] of parsePaxRecords(data)) this.global.set(k, v);
        break;
      case 'L':
        this.longName = readString(data, 0, data.length);
        break;
      case 'K':
        this.longLink = readString(data, 0, data.length);
        break;
    }
  }
}

/** Metadata headers larger than this are refused (a PAX header is normally tiny). */
const MAX_META_BYTES = 8 << 20;

/**
 * Reads a tar stream entry by entry. `data()` yields the current entry's data;
 * `next()` skips what the caller did not read.
 */
export class TarReader {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private eof = false;
  private remaining = 0;
  private padding = 0;
  private readonly state = new TarHeaderState();
  private ended = false;
  private first = true;

  constructor(src: Readable) {
    this.it = (src as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.eof) {
      const r = await this.it.next();
      if (r.done) {
        this.eof = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.buffered += b.length;
    }
    return this.buffered >= n;
  }

  /** Up to n bytes from the front, at least one; undefined at the end of the input. */
  private async take(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(1))) return undefined;
    const head = this.chunks[0];
    if (head.length <= n) {
      this.chunks.shift();
      this.buffered -= head.length;
      return head;
    }
    this.chunks[0] = head.subarray(n);
    this.buffered -= n;
    return head.subarray(0, n);
  }

  private async readExact(n: number, what: string): Promise<Buffer> {
    if (!(await this.fill(n))) throw badTar(`truncated ${what}`);
    if (this.chunks[0].length >= n) return (await this.take(n))!;
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = (await this.take(n - got))!;
      parts.push(b);
      got += b.length;
    }
    return Buffer.concat(parts, n);
  }

  private async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      const b = await this.take(left);
      if (!b) throw badTar(`truncated ${what}`);
      left -= b.length;
    }
  }

  /** The next entry, or null at the end of the archive. */
  async next(): Promise<TarEntry | null> {
    if (this.ended) return null;
    await this.skip(this.remaining + this.padding, 'entry data');
    this.remaining = 0;
    this.padding = 0;
    for (;;) {
      if (!(await this.fill(TAR_BLOCK))) {
        if (this.buffered === 0 && !this.first) {
          // No end-of-archive blocks: accepted, as GNU tar does.
          this.ended = true;
          return null;
        }
        throw badTar(this.first && this.buffered === 0 ? 'the input is empty' : 'truncated header');
      }
      const block = await this.readExact(TAR_BLOCK, 'header');
      if (isZeroBlock(block)) {
        this.ended = true;
        return null;
      }
      if (this.first && !checksumOk(block)) throw badTar('it does not start with a tar header');
      this.first = false;
      const r = this.state.header(block);
      if (r.kind === 'entry') {
        this.remaining = r.entry.size;
        this.padding = tarPaddedSize(r.entry.size) - r.entry.size;
        return r.entry;
      }
      if (r.size > MAX_META_BYTES) throw badTar(`a ${r.size}-byte extended header`);
      const data = await this.readExact(r.size, 'extended header');
      await this.skip(tarPaddedSize(r.size) - r.size, 'extended header');
      this.state.meta(r.flag, data);
    }
  }

  /** The current entry's data, in chunks as they arrive. */
  async *data(): AsyncGenerator<Buffer> {
    while (this.remaining > 0) {
      const b = await this.take(this.remaining);
      if (!b) throw badTar('truncated entry data');
      this.remaining -= b.length;
      yield b;
    }
  }

  /** Reads and drops everything left in the input (after the end of the archive). */
  async drainRest(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (!this.eof) {
      const r = await this.it.next();
      if (r.done) this.eof = true;
    }
  }
}

// ---- writing ----

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
 * fit ustar (long or non-ASCII names, big numbers, fractional times) or when the
 * entry carries PAX records (xattrs). The caller writes `size` bytes of data and
 * tarPadding(size) after it.
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
  for (const [key, value] of [...e.pax].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (FIELD_KEYS.has(key)) continue;
    records.push(paxRecord(key, value));
  }
  const header = ustarBlock(e, FLAG_FROM_TYPE[e.type], pathField, linkField, e.size);
  if (records.length === 0) return header;
  const data = Buffer.concat(records);
  const base = path.posix.basename(e.path.replace(/\/+$/, '')).replace(/[^\x20-\x7e]/g, '_') || 'root';
  const paxHeaderEntry: TarEntry = {
    ...e,
    path: `PaxHeaders.0/${base}`.slice(0, 100),
    type: 'file',
    mode: 0o644,
    size: data.length,
    linkpath: '',
    pax: new Map(),
  };
  const paxHeader = ustarBlock(paxHeaderEntry, 'x', { prefix: '', name: paxHeaderEntry.path }, '', data.length);
  return Buffer.concat([paxHeader, data, tarPadding(data.length), header]);
}

/** A fresh entry with sensible defaults, for writers. */
export function tarEntry(fields: Partial<TarEntry> & Pick<TarEntry, 'path' | 'type'>): TarEntry {
  return {
    mode: fields.type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkpath: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    pax: new Map(),
    ...fields,
  };
}
