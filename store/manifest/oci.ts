// OCI image manifests, image indexes and image configs, and their Docker schema 2
// counterparts (image manifest, manifest list, container config): parsing and strict
// validation.
//
// Two levels:
//  - Schema level (`parseManifestDocument`, `parseImageManifest`, `parseImageIndex`,
//    `parseDescriptorBytes`, `parseImageConfig`, `parseLayoutHeader`): a document is
//    accepted exactly when it follows the OCI image-spec schemas plus the checks the
//    spec adds in prose (Env entries contain '=', registered digest algorithms have
//    their exact encoding, descriptor `data` is padded base64). Artifacts and exotic
//    digest algorithms pass here.
//  - Import level (`parseManifestBytes`): what tspod can turn into a container image:
//    an image manifest whose config is an image config, whose digests are sha256 or
//    sha512, and whose layers are tar, tar+gzip or tar+zstd.
//
// Leniency, on purpose: `null` counts as absent for optional fields (Docker writes
// `"Volumes": null`, `"Env": null`), and unknown fields are ignored (the spec says
// so). Malformed JSON and schema violations are ErrorCode.BadFormat; a well-formed
// document of a kind tspod does not handle is ErrorCode.Unsupported.
//
// Layers: foreign / non-distributable layers (Docker's rootfs.foreign, OCI's
// deprecated layer.nondistributable) are refused by `layerCompression`. In practice
// they are Windows base layers, whose bytes live outside the registry at the
// descriptor's `urls`; tspod fetches only from the registry. Encrypted layers
// (`+encrypted`) are refused too.
import { TspodError, ErrorCode } from '../../native/errors.js';
import { digestProblem, hashBytes, parseDigest, type BlobRef } from '../digest.js';

export const MediaType = {
  ociDescriptor: 'application/vnd.oci.descriptor.v1+json',
  ociLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The Accept header for manifest requests: every manifest type tspod can use. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

export type Compression = 'gzip' | 'zstd' | 'none';

export interface PlatformSpec {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor extends BlobRef {
  urls?: string[];
  annotations?: Record<string, string>;
  /** Base64 (padded) of the content, embedded. */
  data?: string;
  artifactType?: string;
  platform?: PlatformSpec;
}

export interface ImageManifest {
  schemaVersion: 2;
  /** The manifest's media type as determined (document field, or as served/declared). */
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

export interface LayoutHeader {
  imageLayoutVersion: string;
}

export type ManifestDocument =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

// ---------------------------------------------------------------- media types

const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** True for a syntactically valid media type (RFC 6838 restricted-name rules, as the OCI schema has them). */
export function isValidMediaType(s: string): boolean {
  return MEDIA_TYPE_RE.test(s);
}

/** `application/JSON; charset=utf-8` → `application/json`. */
export function normalizeMediaType(s: string | null | undefined): string | undefined {
  if (!s) return undefined;
  const t = s.split(';')[0].trim().toLowerCase();
  return t || undefined;
}

/** Content types that say nothing about which manifest a document is. */
const GENERIC_TYPES = new Set(['application/json', 'text/plain', 'application/octet-stream', 'binary/octet-stream']);

export function isImageManifestMediaType(mt: string): boolean {
  return mt === MediaType.ociManifest || mt === MediaType.dockerManifest;
}

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;
}

/** 'manifest' or 'index' for the four manifest types tspod handles; undefined otherwise. */
export function manifestKind(mt: string): 'manifest' | 'index' | undefined {
  if (isImageManifestMediaType(mt)) return 'manifest';
  if (isIndexMediaType(mt)) return 'index';
  return undefined;
}

const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig, 'application/octet-stream']);

type LayerClass = Compression | 'foreign' | 'encrypted' | 'unknown';

function classifyLayer(mt: string): LayerClass {
  switch (mt) {
    case MediaType.ociLayer:
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return 'none';
    case MediaType.ociLayerGzip:
    case MediaType.dockerLayerGzip:
      return 'gzip';
    case MediaType.ociLayerZstd:
      return 'zstd';
    case MediaType.ociLayerNondistributable:
    case MediaType.ociLayerNondistributableGzip:
    case MediaType.ociLayerNondistributableZstd:
    case MediaType.dockerLayerForeignGzip:
      return 'foreign';
  }
  if (/\+encrypted$/.test(mt)) return 'encrypted';
  return 'unknown';
}

/** True when tspod can unpack a layer of this media type. */
export function isSupportedLayerMediaType(mt: string): boolean {
  const c = classifyLayer(mt);
  return c === 'none' || c === 'gzip' || c === 'zstd';
}

/** The compression of a layer, from its media type. Throws Unsupported for layers tspod cannot use. */
export function layerCompression(mediaType: string): Compression {
  const c = classifyLayer(mediaType);
  switch (c) {
    case 'none':
    case 'gzip':
    case 'zstd':
      return c;
    case 'foreign':
      throw new TspodError(ErrorCode.Unsupported, `layer media type ${JSON.stringify(mediaType)} is a foreign (non-distributable) layer`, {
        hint: 'those are Windows base layers served from outside the registry; tspod runs Linux images only',
      });
    case 'encrypted':
      throw new TspodError(ErrorCode.Unsupported, `layer media type ${JSON.stringify(mediaType)} is an encrypted layer, which tspod cannot decrypt`);
    default:
      throw new TspodError(ErrorCode.Unsupported, `unknown layer media type ${JSON.stringify(mediaType)}`, {
        hint: 'tspod unpacks tar, tar+gzip and tar+zstd layers',
      });
  }
}

// ---------------------------------------------------------------- validation helpers

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

class Check {
  constructor(readonly what: string) {}

  fail(path: string, msg: string): never {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${this.what}: ${path ? `${path} ` : ''}${msg}`);
  }

  object(v: Json | undefined, path: string): JsonObject {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `must be an object, not ${describe(v)}`);
    return v;
  }

  /** An optional field: undefined when absent or null. */
  opt(o: JsonObject, key: string): Json | undefined {
    const v = o[key];
    return v === null ? undefined : v;
  }

  req(o: JsonObject, key: string, path: string): Json {
    const v = o[key];
    if (v === undefined || v === null) this.fail(join(path, key), 'is missing');
    return v;
  }

  string(v: Json | undefined, path: string): string {
    if (typeof v !== 'string') this.fail(path, `must be a string, not ${describe(v)}`);
    return v;
  }

  optString(o: JsonObject, key: string, path: string): string | undefined {
    const v = this.opt(o, key);
    return v === undefined ? undefined : this.string(v, join(path, key));
  }

  array(v: Json | undefined, path: string): Json[] {
    if (!Array.isArray(v)) this.fail(path, `must be an array, not ${describe(v)}`);
    return v;
  }

  stringArray(v: Json | undefined, path: string): string[] {
    return this.array(v, path).map((x, i) => this.string(x, `${path}[${i}]`));
  }

  optStringArray(o: JsonObject, key: string, path: string): string[] | undefined {
    const v = this.opt(o, key);
    return v === undefined ? undefined : this.stringArray(v, join(path, key));
  }

  mapString(v: Json | undefined, path: string): Record<string, string> {
    const o = this.object(v, path);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(o)) {
      if (k === '') this.fail(path, 'has an empty key');
      out[k] = this.string(x, `${path}[${JSON.stringify(k)}]`);
    }
    return out;
  }

  mapObject(v: Json | undefined, path: string): Record<string, object> {
    const o = this.object(v, path);
    const out: Record<string, object> = {};
    for (const [k, x] of Object.entries(o)) {
      if (k === '') this.fail(path, 'has an empty key');
      out[k] = this.object(x, `${path}[${JSON.stringify(k)}]`);
    }
    return out;
  }

  boolean(v: Json | undefined, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `must be true or false, not ${describe(v)}`);
    return v;
  }

  mediaType(v: Json | undefined, path: string): string {
    const s = this.string(v, path);
    if (!isValidMediaType(s)) this.fail(path, `${JSON.stringify(s)} is not a valid media type`);
    return s;
  }

  digest(v: Json | undefined, path: string): string {
    const s = this.string(v, path);
    const problem = digestProblem(s);
    if (problem) this.fail(path, `${JSON.stringify(s)} is not a valid digest (${problem})`);
    return s;
  }

  size(v: Json | undefined, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(path, `must be an integer, not ${describe(v)}`);
    if (v < 0) this.fail(path, `must not be negative (${v})`);
    if (v > Number.MAX_SAFE_INTEGER) this.fail(path, `is too large (${v})`);
    return v;
  }

  dateTime(v: Json | undefined, path: string): string {
    const s = this.string(v, path);
    if (!DATE_TIME_RE.test(s) || Number.isNaN(Date.parse(s.replace(' ', 'T')))) this.fail(path, `${JSON.stringify(s)} is not an RFC 3339 date-time`);
    return s;
  }
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function describe(v: Json | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseJsonObject(bytes: Buffer | string, what: string): JsonObject {
  let v: Json;
  try {
    v = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')) as Json;
  } catch (e) {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: expected a JSON object, got ${describe(v)}`);
  }
  return v;
}

// ---------------------------------------------------------------- descriptors

function validatePlatform(c: Check, v: Json | undefined, path: string): PlatformSpec {
  const o = c.object(v, path);
  const p: PlatformSpec = {
    architecture: c.string(c.req(o, 'architecture', path), join(path, 'architecture')),
    os: c.string(c.req(o, 'os', path), join(path, 'os')),
  };
  const osVersion = c.optString(o, 'os.version', path);
  if (osVersion !== undefined) p['os.version'] = osVersion;
  const osFeatures = c.optStringArray(o, 'os.features', path);
  if (osFeatures !== undefined) p['os.features'] = osFeatures;
  const variant = c.optString(o, 'variant', path);
  if (variant !== undefined) p.variant = variant;
  const features = c.optStringArray(o, 'features', path);
  if (features !== undefined) p.features = features;
  return p;
}

function validateDescriptor(c: Check, v: Json | undefined, path: string, opts: { platform?: 'optional' | 'required' } = {}): Descriptor {
  const o = c.object(v, path);
  const d: Descriptor = {
    mediaType: c.mediaType(c.req(o, 'mediaType', path), join(path, 'mediaType')),
    digest: c.digest(c.req(o, 'digest', path), join(path, 'digest')),
    size: c.size(c.req(o, 'size', path), join(path, 'size')),
  };
  const urls = c.opt(o, 'urls');
  if (urls !== undefined) {
    d.urls = c.stringArray(urls, join(path, 'urls'));
    d.urls.forEach((u, i) => {
      if (!isAbsoluteUri(u)) c.fail(`${join(path, 'urls')}[${i}]`, `${JSON.stringify(u)} is not an absolute URI`);
    });
  }
  const annotations = c.opt(o, 'annotations');
  if (annotations !== undefined) d.annotations = c.mapString(annotations, join(path, 'annotations'));
  const data = c.opt(o, 'data');
  if (data !== undefined) {
    const s = c.string(data, join(path, 'data'));
    if (!BASE64_RE.test(s)) c.fail(join(path, 'data'), 'is not padded base64');
    const bytes = Buffer.from(s, 'base64');
    if (bytes.length !== d.size) c.fail(join(path, 'data'), `holds ${bytes.length} bytes but size says ${d.size}`);
    const alg = d.digest.slice(0, d.digest.indexOf(':'));
    if ((alg === 'sha256' || alg === 'sha512') && `${alg}:${hashBytes(alg, bytes).hex}` !== d.digest) {
      c.fail(join(path, 'data'), `does not match the digest ${d.digest}`);
    }
    d.data = s;
  }
  const artifactType = c.opt(o, 'artifactType');
  if (artifactType !== undefined) d.artifactType = c.mediaType(artifactType, join(path, 'artifactType'));
  const platform = c.opt(o, 'platform');
  if (platform !== undefined) d.platform = validatePlatform(c, platform, join(path, 'platform'));
  else if (opts.platform === 'required') c.fail(join(path, 'platform'), 'is missing');
  return d;
}

function isAbsoluteUri(s: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/** A standalone content descriptor (`application/vnd.oci.descriptor.v1+json`). */
export function parseDescriptorBytes(bytes: Buffer | string, what = 'descriptor'): Descriptor {
  return validateDescriptor(new Check(what), parseJsonObject(bytes, what), '');
}

/** Validates a descriptor already parsed from JSON (an `index.json` entry, say). */
export function validateDescriptorJson(v: unknown, what = 'descriptor'): Descriptor {
  return validateDescriptor(new Check(what), v as Json, '');
}

/** The BlobRef part of a descriptor (what a source's openBlob takes). */
export function toBlobRef(d: Descriptor): BlobRef {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

// ---------------------------------------------------------------- manifests and indexes

function checkSchemaVersion(c: Check, o: JsonObject): void {
  const v = c.req(o, 'schemaVersion', '');
  if (v !== 2) c.fail('schemaVersion', `must be 2, not ${describe(v)}`);
}

function validateManifest(c: Check, o: JsonObject, mediaType: string): ImageManifest {
  checkSchemaVersion(c, o);
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: validateDescriptor(c, c.req(o, 'config', ''), 'config'),
    layers: c.array(c.req(o, 'layers', ''), 'layers').map((l, i) => validateDescriptor(c, l, `layers[${i}]`)),
  };
  if (m.layers.length === 0) c.fail('layers', 'must list at least one layer');
  const artifactType = c.opt(o, 'artifactType');
  if (artifactType !== undefined) m.artifactType = c.mediaType(artifactType, 'artifactType');
  const subject = c.opt(o, 'subject');
  if (subject !== undefined) m.subject = validateDescriptor(c, subject, 'subject');
  const annotations = c.opt(o, 'annotations');
  if (annotations !== undefined) m.annotations = c.mapString(annotations, 'annotations');
  return m;
}

function validateIndex(c: Check, o: JsonObject, mediaType: string): ImageIndex {
  checkSchemaVersion(c, o);
  const platform = mediaType === MediaType.dockerManifestList ? 'required' : 'optional';
  const idx: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: c.array(c.req(o, 'manifests', ''), 'manifests').map((d, i) => validateDescriptor(c, d, `manifests[${i}]`, { platform })),
  };
  const artifactType = c.opt(o, 'artifactType');
  if (artifactType !== undefined) idx.artifactType = c.mediaType(artifactType, 'artifactType');
  const subject = c.opt(o, 'subject');
  if (subject !== undefined) idx.subject = validateDescriptor(c, subject, 'subject');
  const annotations = c.opt(o, 'annotations');
  if (annotations !== undefined) idx.annotations = c.mapString(annotations, 'annotations');
  return idx;
}

/**
 * Parses a manifest or an index. `declared` is the media type it was served or
 * referenced with (a registry's Content-Type, a descriptor's mediaType); it must agree
 * with the document's own `mediaType` field when both are there. Without either, the
 * document's shape decides (OCI allows leaving `mediaType` out).
 */
export function parseManifestDocument(bytes: Buffer | string, declared?: string | null, what = 'manifest'): ManifestDocument {
  const c = new Check(what);
  const o = parseJsonObject(bytes, what);
  const declaredType = normalizeMediaType(declared);
  const external = declaredType && !GENERIC_TYPES.has(declaredType) ? declaredType : undefined;
  const innerRaw = c.opt(o, 'mediaType');
  const inner = innerRaw === undefined ? undefined : c.mediaType(innerRaw, 'mediaType');

  if (o.schemaVersion === 1 || external === MediaType.dockerSchema1 || external === MediaType.dockerSchema1Signed || inner === MediaType.dockerSchema1) {
    throw new TspodError(ErrorCode.Unsupported, `${what} is a Docker schema 1 manifest, which tspod does not support`, {
      hint: 'push the image again with a current docker, podman or skopeo',
    });
  }
  if (inner && external && inner !== external) {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: its mediaType is ${JSON.stringify(inner)} but it was served as ${JSON.stringify(external)}`);
  }
  let mt = inner ?? external;
  if (!mt) {
    if ('manifests' in o) mt = MediaType.ociIndex;
    else if ('config' in o || 'layers' in o) mt = MediaType.ociManifest;
    else throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: neither an image manifest nor an image index`);
  }
  if ((mt === MediaType.dockerManifest || mt === MediaType.dockerManifestList) && inner === undefined) {
    c.fail('mediaType', `is missing (Docker schema 2 requires it)`);
  }
  switch (manifestKind(mt)) {
    case 'manifest':
      return { kind: 'manifest', mediaType: mt, manifest: validateManifest(c, o, mt) };
    case 'index':
      return { kind: 'index', mediaType: mt, index: validateIndex(c, o, mt) };
    default:
      throw new TspodError(ErrorCode.Unsupported, `${what} has media type ${JSON.stringify(mt)}, which is not an image manifest or index`, {
        hint: 'tspod handles OCI image manifests and indexes and Docker schema 2 manifests and manifest lists',
      });
  }
}

/** An image manifest at schema level (OCI or Docker schema 2). An index here is an error. */
export function parseImageManifest(bytes: Buffer | string, declared?: string | null, what = 'image manifest'): ImageManifest {
  const doc = parseManifestDocument(bytes, declared, what);
  if (doc.kind !== 'manifest') {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: it is an image index (${doc.mediaType}), not an image manifest`);
  }
  return doc.manifest;
}

/** An image index or Docker manifest list at schema level. */
export function parseImageIndex(bytes: Buffer | string, declared?: string | null, what = 'image index'): ImageIndex {
  const doc = parseManifestDocument(bytes, declared, what);
  if (doc.kind !== 'index') {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${what}: it is an image manifest (${doc.mediaType}), not an image index`);
  }
  return doc.index;
}

/**
 * The manifest of an image to import: schema-valid, and something tspod can run.
 * Checks that the config is an image config, that every digest is sha256 or sha512,
 * and that no layer has an unknown or encrypted media type. (Foreign layers pass
 * here and are refused by `layerCompression`, after the platform check has had its
 * chance to say "this is a Windows image".)
 */
export function parseManifestBytes(bytes: Buffer | string, mediaType?: string | null, what = 'image manifest'): ImageManifest {
  const m = parseImageManifest(bytes, mediaType, what);
  if (!IMAGE_CONFIG_TYPES.has(m.config.mediaType)) {
    throw new TspodError(ErrorCode.Unsupported, `${what} is not a container image: its config has media type ${JSON.stringify(m.config.mediaType)}`, {
      hint: 'it is probably an OCI artifact (a signature, SBOM, Helm chart…), not something to run',
    });
  }
  usableDigest(m.config.digest, `${what}: config`);
  m.layers.forEach((l, i) => {
    usableDigest(l.digest, `${what}: layer ${i}`);
    const cls = classifyLayer(l.mediaType);
    if (cls === 'unknown' || cls === 'encrypted') layerCompression(l.mediaType);
  });
  return m;
}

function usableDigest(d: string, what: string): void {
  try {
    parseDigest(d);
  } catch (e) {
    throw new TspodError(ErrorCode.Unsupported, `${what} has digest ${JSON.stringify(d)}: tspod verifies sha256 and sha512 digests only`, { cause: e });
  }
}

// ---------------------------------------------------------------- image config

function validateContainerConfig(c: Check, v: Json, path: string): ContainerConfig {
  const o = c.object(v, path);
  const cc: ContainerConfig = {};
  const user = c.optString(o, 'User', path);
  if (user !== undefined) cc.User = user;
  const ports = c.opt(o, 'ExposedPorts');
  if (ports !== undefined) cc.ExposedPorts = c.mapObject(ports, join(path, 'ExposedPorts'));
  const env = c.optStringArray(o, 'Env', path);
  if (env !== undefined) {
    env.forEach((e, i) => {
      if (!e.includes('=')) c.fail(`${join(path, 'Env')}[${i}]`, `${JSON.stringify(e)} is not NAME=VALUE`);
      if (e.startsWith('=')) c.fail(`${join(path, 'Env')}[${i}]`, `${JSON.stringify(e)} has an empty name`);
    });
    cc.Env = env;
  }
  const entrypoint = c.optStringArray(o, 'Entrypoint', path);
  if (entrypoint !== undefined) cc.Entrypoint = entrypoint;
  const cmd = c.optStringArray(o, 'Cmd', path);
  if (cmd !== undefined) cc.Cmd = cmd;
  const volumes = c.opt(o, 'Volumes');
  if (volumes !== undefined) cc.Volumes = c.mapObject(volumes, join(path, 'Volumes'));
  const wd = c.optString(o, 'WorkingDir', path);
  if (wd !== undefined) cc.WorkingDir = wd;
  const labels = c.opt(o, 'Labels');
  if (labels !== undefined) cc.Labels = c.mapString(labels, join(path, 'Labels'));
  const stop = c.optString(o, 'StopSignal', path);
  if (stop !== undefined) cc.StopSignal = stop;
  const argsEscaped = c.opt(o, 'ArgsEscaped');
  if (argsEscaped !== undefined) cc.ArgsEscaped = c.boolean(argsEscaped, join(path, 'ArgsEscaped'));
  return cc;
}

/** An OCI image config or Docker container config (`application/vnd.docker.container.image.v1+json`). */
export function parseImageConfig(bytes: Buffer | string, what = 'image config'): ImageConfig {
  const c = new Check(what);
  const o = parseJsonObject(bytes, what);
  const rootfsObj = c.object(c.req(o, 'rootfs', ''), 'rootfs');
  const type = c.string(c.req(rootfsObj, 'type', 'rootfs'), 'rootfs.type');
  if (type !== 'layers') c.fail('rootfs.type', `must be "layers", not ${JSON.stringify(type)}`);
  const diffIds = c.array(c.req(rootfsObj, 'diff_ids', 'rootfs'), 'rootfs.diff_ids').map((d, i) => c.digest(d, `rootfs.diff_ids[${i}]`));
  const cfg: ImageConfig = {
    architecture: c.string(c.req(o, 'architecture', ''), 'architecture'),
    os: c.string(c.req(o, 'os', ''), 'os'),
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const created = c.opt(o, 'created');
  if (created !== undefined) cfg.created = c.dateTime(created, 'created');
  const author = c.optString(o, 'author', '');
  if (author !== undefined) cfg.author = author;
  const variant = c.optString(o, 'variant', '');
  if (variant !== undefined) cfg.variant = variant;
  const osVersion = c.optString(o, 'os.version', '');
  if (osVersion !== undefined) cfg['os.version'] = osVersion;
  const osFeatures = c.optStringArray(o, 'os.features', '');
  if (osFeatures !== undefined) cfg['os.features'] = osFeatures;
  const config = c.opt(o, 'config');
  if (config !== undefined) cfg.config = validateContainerConfig(c, config, 'config');
  const history = c.opt(o, 'history');
  if (history !== undefined) {
    cfg.history = c.array(history, 'history').map((h, i) => {
      const p = `history[${i}]`;
      const ho = c.object(h, p);
      const e: HistoryEntry = {};
      const hc = c.opt(ho, 'created');
      if (hc !== undefined) e.created = c.dateTime(hc, join(p, 'created'));
      const ha = c.optString(ho, 'author', p);
      if (ha !== undefined) e.author = ha;
      const hb = c.optString(ho, 'created_by', p);
      if (hb !== undefined) e.created_by = hb;
      const hm = c.optString(ho, 'comment', p);
      if (hm !== undefined) e.comment = hm;
      const he = c.opt(ho, 'empty_layer');
      if (he !== undefined) e.empty_layer = c.boolean(he, join(p, 'empty_layer'));
      return e;
    });
  }
  return cfg;
}

// ---------------------------------------------------------------- image layout

/** The `oci-layout` file of an OCI image layout. */
export function parseLayoutHeader(bytes: Buffer | string, what = 'oci-layout file'): LayoutHeader {
  const c = new Check(what);
  const o = parseJsonObject(bytes, what);
  return { imageLayoutVersion: c.string(c.req(o, 'imageLayoutVersion', ''), 'imageLayoutVersion') };
}
