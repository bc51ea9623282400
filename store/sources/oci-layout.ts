// `oci:DIR[:TAG]`: an OCI image layout on disk (image-spec image-layout.md):
//   DIR/oci-layout            {"imageLayoutVersion": "1.0.0"}
//   DIR/index.json            an image index; entries tagged by the
//                             org.opencontainers.image.ref.name annotation
//   DIR/blobs/<alg>/<hex>     content-addressed blobs
//
// TAG picks the index.json entry whose ref.name is TAG (`@N` picks the N-th entry,
// from 0). Without TAG: the only entry, else the ones tagged `latest`, else (a
// multi-platform layout without tags) the one for this host. An entry that is an
// index itself is resolved to the host's platform.
//
// The reading is written against LayoutFiles so that oci-archive.ts can serve the
// same layout from inside a tar without unpacking it. Nothing here needs to be
// trusted: the importer verifies every byte against its descriptor.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import semver from 'semver';
import { TspodError, ErrorCode, errnoCode } from '../../native/errors.js';
import { MAX_MANIFEST_BYTES, parseDigest, type BlobRef } from '../digest.js';
import {
  MediaType,
  manifestKind,
  parseImageIndex,
  parseLayoutHeader,
  toBlobRef,
  type Descriptor,
  type ImageIndex,
} from '../manifest/oci.js';
import { selectPlatformManifest, type Platform } from '../manifest/platform.js';
import { verifyBytes } from '../verify.js';
import { parseDockerReference } from './reference.js';
import type { OciCandidate } from './source.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

/** Read access to a layout, wherever it is stored. Paths are relative, `/`-separated. */
export interface LayoutFiles {
  /** How the user named the layout, for messages: `oci:/srv/img`. */
  describe: string;
  /** The whole file, or undefined if there is none. Throws BadFormat beyond maxBytes. */
  readFile(rel: string, maxBytes: number): Promise<Buffer | undefined>;
  /** The file as a stream; throws NotFound if there is none. */
  open(rel: string): Promise<Readable>;
}

export interface LayoutOptions {
  /** The platform to choose from an index; the host's by default. */
  platform?: Platform;
}

export async function openOciLayout(dir: string, ref?: string, opts: LayoutOptions = {}): Promise<OciCandidate> {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(abs);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
      throw new TspodError(ErrorCode.NotFound, `OCI image layout ${JSON.stringify(dir)} does not exist`);
    }
    throw e;
  }
  if (!st.isDirectory()) {
    throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(dir)} is not a directory, so not an OCI image layout`, {
      hint: `for a tar of a layout use oci-archive:${dir}`,
    });
  }
  const describe = `oci:${abs}`;
  return openLayout(dirFiles(abs, describe), {
    source: ref === undefined ? describe : `${describe}:${ref}`,
    ref,
    nameBase: path.basename(abs),
    platform: opts.platform,
  });
}

function dirFiles(root: string, describe: string): LayoutFiles {
  return {
    describe,
    async readFile(rel, maxBytes) {
      let fh: FileHandle;
      try {
        fh = await fs.promises.open(path.join(root, rel), 'r');
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
        if (errnoCode(e) === 'EACCES') throw new TspodError(ErrorCode.Permission, `cannot read ${rel} in ${describe}: permission denied`);
        throw e;
      }
      try {
        const size = (await fh.stat()).size;
        if (size > maxBytes) throw tooBig(rel, describe, size, maxBytes);
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    },
    async open(rel) {
      let fh: FileHandle;
      try {
        fh = await fs.promises.open(path.join(root, rel), 'r');
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') throw missingBlob(rel, describe);
        if (errnoCode(e) === 'EACCES') throw new TspodError(ErrorCode.Permission, `cannot read ${rel} in ${describe}: permission denied`);
        throw e;
      }
      return fh.createReadStream({ highWaterMark: 1 << 20 });
    },
  };
}

export function tooBig(rel: string, describe: string, size: number, max: number): TspodError {
  return new TspodError(ErrorCode.BadFormat, `${rel} in ${describe} is ${size} bytes; refusing more than ${max}`);
}

function missingBlob(rel: string, describe: string): TspodError {
  const m = /^blobs\/([^/]+)\/([^/]+)$/.exec(rel);
  return new TspodError(ErrorCode.NotFound, m ? `blob ${m[1]}:${m[2]} is missing from ${describe}` : `${rel} is missing from ${describe}`, {
    hint: 'the layout is incomplete; copy it again',
  });
}

/** `sha256:<hex>` → `blobs/sha256/<hex>` (parseDigest keeps it a plain relative path). */
export function blobPath(digest: string): string {
  const d = parseDigest(digest);
  return `blobs/${d.algorithm}/${d.hex}`;
}

export interface OpenLayoutParams {
  /** The candidate's source string. */
  source: string;
  /** TAG or `@N`, as the user gave it. */
  ref?: string;
  /** Base of the `localhost/<base>:<tag>` name recorded for images tagged by a bare tag. */
  nameBase: string;
  platform?: Platform;
  close?: () => Promise<void>;
}

/** Reads a layout through `files` and picks the image (see the top of this file). */
export async function openLayout(files: LayoutFiles, p: OpenLayoutParams): Promise<OciCandidate> {
  const d = files.describe;
  const header = await files.readFile('oci-layout', 64 << 10);
  if (!header) {
    throw new TspodError(ErrorCode.BadFormat, `${d} is not an OCI image layout: it has no oci-layout file`);
  }
  const version = parseLayoutHeader(header, `oci-layout file of ${d}`).imageLayoutVersion;
  if (!semver.valid(version) || semver.major(version) !== 1) {
    throw new TspodError(ErrorCode.Unsupported, `${d} has imageLayoutVersion ${JSON.stringify(version)}; tspod reads version 1 layouts`);
  }
  const indexBytes = await files.readFile('index.json', MAX_MANIFEST_BYTES);
  if (!indexBytes) throw new TspodError(ErrorCode.BadFormat, `${d} is not an OCI image layout: it has no index.json`);
  const index = parseImageIndex(indexBytes, undefined, `index.json of ${d}`);

  const picked = pickEntries(index, p.ref, d);
  let chosen: Descriptor =
    picked.length === 1
      ? picked[0]
      : selectPlatformManifest({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: picked }, { platform: p.platform, what: d });
  const refName = chosen.annotations?.[REF_NAME];

  let parentIndex: { ref: BlobRef; bytes: Buffer } | undefined;
  for (let depth = 0; manifestKind(chosen.mediaType) === 'index'; depth++) {
    if (depth >= 4) throw new TspodError(ErrorCode.BadFormat, `${d}: image indexes nested more than 4 deep`);
    const bytes = await readBlob(files, chosen, 'image index');
    const nested: ImageIndex = parseImageIndex(bytes, chosen.mediaType, `image index ${chosen.digest} in ${d}`);
    parentIndex = { ref: toBlobRef(chosen), bytes };
    chosen = selectPlatformManifest(nested, { platform: p.platform, what: `${d}${p.ref ? `:${p.ref}` : ''}` });
  }
  if (manifestKind(chosen.mediaType) !== 'manifest') {
    throw new TspodError(ErrorCode.Unsupported, `${p.source} has media type ${JSON.stringify(chosen.mediaType)}, which is not an image`, {
      hint: 'tspod runs OCI image manifests, Docker schema 2 manifests and indexes of them',
    });
  }
  const manifestBytes = await readBlob(files, chosen, 'image manifest');

  return {
    kind: 'oci',
    source: p.source,
    names: layoutNames(p.nameBase, refName, p.ref === undefined),
    manifest: { ref: toBlobRef(chosen), bytes: manifestBytes },
    ...(parentIndex ? { index: parentIndex } : {}),
    async openBlob(ref: BlobRef): Promise<Readable> {
      return files.open(blobPath(ref.digest));
    },
    close: p.close,
  };
}

async function readBlob(files: LayoutFiles, desc: Descriptor, what: string): Promise<Buffer> {
  if (desc.size > MAX_MANIFEST_BYTES) throw tooBig(`${what} ${desc.digest}`, files.describe, desc.size, MAX_MANIFEST_BYTES);
  const rel = blobPath(desc.digest);
  const bytes = await files.readFile(rel, MAX_MANIFEST_BYTES);
  if (!bytes) throw missingBlob(rel, files.describe);
  // Checked here as well as in the importer: the choice of image depends on it.
  verifyBytes(bytes, { digest: desc.digest, size: desc.size, what: `${what} ${desc.digest} in ${files.describe}` });
  return bytes;
}

function pickEntries(index: ImageIndex, ref: string | undefined, d: string): Descriptor[] {
  const entries = index.manifests;
  if (entries.length === 0) throw new TspodError(ErrorCode.NotFound, `${d} holds no images (its index.json is empty)`);
  const tags = [...new Set(entries.map((e) => e.annotations?.[REF_NAME]).filter((t): t is string => !!t))];
  const tagHint = tags.length ? `its tags: ${tags.join(', ')}` : `it has no tags; pick an image by position, ${d}:@0 to :@${entries.length - 1}`;
  if (ref !== undefined && /^@\d+$/.test(ref)) {
    const n = Number(ref.slice(1));
    if (n >= entries.length) {
      throw new TspodError(ErrorCode.NotFound, `${d} has no image ${ref}`, { hint: `it holds ${entries.length} (@0 to @${entries.length - 1})` });
    }
    return [entries[n]];
  }
  if (ref !== undefined) {
    const hits = entries.filter((e) => e.annotations?.[REF_NAME] === ref);
    if (hits.length === 0) throw new TspodError(ErrorCode.NotFound, `no image tagged ${JSON.stringify(ref)} in ${d}`, { hint: tagHint });
    return hits;
  }
  if (entries.length === 1) return entries;
  const latest = entries.filter((e) => e.annotations?.[REF_NAME] === 'latest');
  if (latest.length) return latest;
  // A multi-platform layout written without tags: one entry per platform.
  if (tags.length === 0 && entries.every((e) => e.platform)) return entries;
  throw new TspodError(ErrorCode.Ambiguous, `${d} holds ${entries.length} images; say which one with ${d}:TAG`, { hint: tagHint });
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * The names an image from a layout gets. A ref.name that is a whole reference
 * (`docker.io/library/busybox:1.36`, as skopeo writes for `oci:DIR:REF`) is used
 * as it is, normalised; a bare tag gives `localhost/<dir name>:<tag>` (podman's
 * `localhost/` for local images, with the layout's directory name); an untagged
 * image chosen without a TAG (the layout's only one, or one platform of an
 * untagged multi-platform layout) gives `localhost/<dir name>:latest`.
 */
export function layoutNames(nameBase: string, refName: string | undefined, defaultChoice: boolean): string[] {
  if (refName && (refName.includes('/') || refName.includes(':') || refName.includes('@'))) {
    const full = normalizeDockerName(refName);
    if (full) return [full];
  }
  const repo = localRepoName(nameBase);
  if (refName) return TAG_RE.test(refName) ? [`localhost/${repo}:${refName}`] : [];
  return defaultChoice ? [`localhost/${repo}:latest`] : [];
}

/** A directory or file name made into one valid repository path component. */
export function localRepoName(base: string): string {
  const s = base
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|[._-]+$/g, '')
    .replace(/[._-]{2,}/g, (m) => (m === '__' ? m : m[0] === '-' ? '-' : m[0]));
  return s && PATH_COMPONENT_RE.test(s) ? s : 'image';
}

/**
 * The store name of a reference, by the registry source's rules (reference.ts):
 * `busybox` → `docker.io/library/busybox:latest`, `quay.io/a/b` →
 * `quay.io/a/b:latest`. Undefined if it is not a valid reference.
 */
export function normalizeDockerName(ref: string): string | undefined {
  if (ref.startsWith('docker:')) return undefined;
  try {
    return parseDockerReference(ref).name;
  } catch {
    return undefined;
  }
}
