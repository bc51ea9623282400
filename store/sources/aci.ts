// appc images (ACIs): opening them from files and URLs, reading them as one
// stream, and validating their manifests.
//
// An ACI is a tar with exactly two top-level entries, `manifest` and `rootfs/`
// (docs/architecture.md, "Images"). The importer streams an ACI once: file → decompress →
// sha512 → parseAciStream, which hands on the `rootfs/` entries as a tar of their
// own (prefix stripped) for the layer unpacker and keeps the manifest.
//
// Tar is read by store/tar/reader.ts and the rootfs entries re-encoded by
// store/tar/writer.ts, with every PAX record intact (xattrs, sub-second times,
// long names), which node-tar's writer would drop.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { TspodError, ErrorCode, errnoCode } from '../../native/errors.js';
import { log } from '../../native/log.js';
import type { InsecureOptions } from '../insecure.js';
import { checkAppPaths, type AppcImageManifest } from '../manifest/appc.js';
import { imagePathProblem } from '../../native/image-fs.js';
import { MAX_MANIFEST_BYTES } from '../digest.js';
import type { AciCandidate } from './source.js';
import { HttpClient } from './http.js';
import type { TarEntry } from '../tar/entry.js';
import { TarParser, readTar, type TarEntryHandler } from '../tar/reader.js';
import { encodeTarHeader, tarPadding, TAR_END } from '../tar/writer.js';

// ---------------------------------------------------------------------------
// Opening an ACI
// ---------------------------------------------------------------------------

export interface OpenAciOptions {
  insecure?: Pick<InsecureOptions, 'http' | 'tls'>;
  signal?: AbortSignal;
  /** A URL's timeouts (store/sources/http.ts): for response headers, and for a silent body, in ms. */
  timeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * An ACI file (plain, gzip, bzip2 or xz: the importer detects which) or an
 * http(s) URL (plain HTTP too: the user named it).
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

/**
 * A URL the user typed (or a dependency next to it) is fetched as given, plain
 * HTTP included, as rkt does: only discovery and registries need
 * --insecure-options=http. Redirects, TLS and timeouts are tspod's one HTTP
 * policy (store/sources/http.ts): a redirect from https to plain HTTP needs
 * --insecure-options=http; no response headers within 30 s, or a body silent for
 * 60 s, fails the fetch with one line.
 */
async function openAciUrl(url: string, opts: OpenAciOptions): Promise<AciCandidate> {
  const client = new HttpClient({
    insecure: opts.insecure ?? { http: false, tls: false },
    timeoutMs: opts.timeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    failure: (u) => `unable to fetch image from ${u}`,
  });
  log().debug(`remote fetching from URL ${JSON.stringify(url)}`);
  let body: Readable;
  let length: number;
  try {
    const answer = await client.get(url, { accept: 'application/octet-stream, */*', signal: opts.signal });
    const { res } = answer;
    if (res.status !== 200 || !res.body) {
      answer.done();
      res.body?.resume();
      throw new TspodError(
        res.status === 404 ? ErrorCode.NotFound : ErrorCode.Network,
        `unable to fetch image from ${answer.url}: HTTP ${res.status} ${res.statusText}`.trimEnd(),
      );
    }
    length = Number(res.headers.get('content-length') ?? '');
    body = client.stream(answer, 'the ACI', opts.signal);
  } catch (e) {
    client.close();
    throw e;
  }
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
      client.close();
    },
  };
}

// ---------------------------------------------------------------------------
// Reading an ACI stream
// ---------------------------------------------------------------------------


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
    let manifestBytes: Buffer | undefined;
    let sawManifest = false;
    let sawRootfs = false;
    const write = (chunk: Buffer): void => {
      if (out.destroyed) throw new Error('rootfs reader closed');
      out.write(chunk);
    };
    const handler: TarEntryHandler = {
      entry: (entry) => {
        const p = topLevelPath(entry.path);
        if (p === '') return null; // `./`, the archive's own root
        if (p === 'manifest') {
          if (sawManifest) throw new TspodError(ErrorCode.BadFormat, `${aci} has more than one manifest entry`);
          sawManifest = true;
          if (entry.type !== 'file') throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is not a regular file`);
          if (entry.size > MAX_MANIFEST_BYTES) {
            throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is ${entry.size} bytes; refusing manifests over ${MAX_MANIFEST_BYTES}`);
          }
          const parts: Buffer[] = [];
          return { write: (data) => parts.push(Buffer.from(data)), end: () => (manifestBytes = Buffer.concat(parts)) };
        }
        if (p === 'rootfs' || p.startsWith('rootfs/')) {
          sawRootfs = true;
          write(rootfsHeader(entry, p, aci));
          const pad = tarPadding(entry.size);
          return { write, end: () => pad.length > 0 && write(pad) };
        }
        const top = p.split('/')[0];
        throw new TspodError(ErrorCode.BadFormat, `${aci} has an unexpected top-level entry ${JSON.stringify(top)}`, {
          hint: 'an ACI holds only manifest and rootfs/',
        });
      },
    };
    const parser = new TarParser(handler, { what: aci, warn: (msg) => log().warn(`${aci}: ${msg}`) });
    await readTar(tar, parser, () => drained(out));
    if (parser.offset === 0) throw new TspodError(ErrorCode.BadFormat, `${aci}: not a valid tar archive: the input is empty`);
    if (!manifestBytes) throw new TspodError(ErrorCode.BadFormat, `${aci} has no manifest`);
    if (!sawRootfs) throw new TspodError(ErrorCode.BadFormat, `${aci} has no rootfs/ directory`);
    let raw: unknown;
    try {
      raw = JSON.parse(manifestBytes.toString('utf8'));
    } catch (e) {
      throw new TspodError(ErrorCode.BadFormat, `${aci}: its manifest is not valid JSON (${(e as Error).message})`);
    }
    const m = validateAciManifest(raw, source ?? 'the ACI');
    write(TAR_END);
    out.end();
    resolveManifest(m);
  };
  run().catch((e: unknown) => {
    // Tar-level errors do not know which file they are about.
    const err =
      e instanceof TspodError && source && !e.message.includes(source)
        ? new TspodError(e.code, `${aci}: ${e.message}`, { hint: e.hint, remedy: e.remedy, cause: e })
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

/** Waits until `out` wants more; fails instead of hanging when its reader went away. */
function drained(out: PassThrough): Promise<void> {
  if (out.destroyed) return Promise.reject(new Error('rootfs reader closed'));
  if (!out.writableNeedDrain) return Promise.resolve();
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

/**
 * appc's AC Identifier: lower-case letters, digits and `-._~/`, starting and
 * ending with a letter or digit. appc checks only that (so `shorthash--50` and
 * `a//b` are names), not how the separators are spaced.
 */
export const AC_IDENTIFIER = /^[a-z0-9](?:[a-z0-9._~/-]*[a-z0-9])?$/;
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
 * on unmarshal) and returns it typed, with the app's paths checked as for every
 * manifest tspod takes in (checkAppPaths: no `..`, absolute). The os and arch
 * labels are not checked here: a foreign image can be fetched, listed and
 * exported; rkt checks them when the image is rendered or run, and so does
 * tspod (checkAciPlatform).
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

  checkNameValues(raw.annotations, 'annotations', source);
  for (const a of (raw.annotations ?? []) as Array<{ name: string }>) {
    if (!AC_IDENTIFIER.test(a.name)) throw bad(source, `bad annotation name ${JSON.stringify(a.name)}`);
  }
  checkStrings(raw.pathWhitelist, 'pathWhitelist', source);
  for (const p of (raw.pathWhitelist ?? []) as string[]) {
    const why = imagePathProblem(p);
    if (why) throw bad(source, `pathWhitelist entry ${JSON.stringify(p)} ${why}`);
  }
  if (raw.dependencies !== undefined && raw.dependencies !== null) {
    if (!Array.isArray(raw.dependencies)) throw bad(source, 'dependencies must be a list');
    for (const d of raw.dependencies) {
      if (!isObject(d) || typeof d.imageName !== 'string' || !AC_IDENTIFIER.test(d.imageName)) {
        throw bad(source, 'every dependency needs an imageName that is an AC Identifier');
      }
      if (d.imageID !== undefined && (typeof d.imageID !== 'string' || !/^sha512-[0-9a-f]{2,128}$/.test(d.imageID))) {
        throw bad(source, `dependency ${JSON.stringify(d.imageName)}: imageID must be sha512- and hex digits`);
      }
      checkNameValues(d.labels, 'dependency labels', source);
      if (d.size !== undefined && typeof d.size !== 'number') throw bad(source, 'a dependency size must be a number');
    }
  }
  if (raw.app !== undefined && raw.app !== null) {
    validateApp(raw.app, source);
    checkAppPaths(raw.app as AppcImageManifest['app'], source);
  }
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
 * rkt's check before an appc image is rendered or run: the image must say which
 * os and arch it is for, and they must be this host's. Throws Platform errors
 * with appc's texts (`missing os label in the image manifest`, `bad arch
 * "arm64" for linux (must be one of: [amd64])`) and which image it is.
 */
export function checkAciPlatform(m: Pick<AppcImageManifest, 'labels'> & { name?: string }, source?: string): void {
  const labels = new Map((m.labels ?? []).map((l) => [l.name, l.value] as const));
  const which = source ?? (m.name ? `image ${JSON.stringify(m.name)}` : 'the image');
  if (!labels.has('os')) throw new TspodError(ErrorCode.Platform, `missing os label in the image manifest of ${which}`);
  if (!labels.has('arch')) throw new TspodError(ErrorCode.Platform, `missing arch label in the image manifest of ${which}`);
  const problem = checkOsArch(labels, { linux: hostAppcArches() });
  if (problem) {
    throw new TspodError(ErrorCode.Platform, problem, {
      hint: `${which} is for ${labels.get('os')}/${labels.get('arch')}, this host runs linux/${hostAppcArches()[0]}`,
    });
  }
}
