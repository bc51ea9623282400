// OCI / Docker manifest parsing (store/manifest/oci.ts) against the OCI image-spec
// test vectors (fixtures/oci-image-spec-vectors.json, kept in the repository, or
// the file named by $TSPOD_OCI_VECTORS), plus the checks tspod adds on top, and platform
// selection (store/manifest/platform.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TspodError, ErrorCode } from '../native/errors.js';
import {
  MediaType,
  layerCompression,
  isSupportedLayerMediaType,
  parseDescriptorBytes,
  parseImageConfig,
  parseImageIndex,
  parseImageManifest,
  parseLayoutHeader,
  parseManifestBytes,
  parseManifestDocument,
  isValidMediaType,
} from '../store/manifest/oci.js';
import { digestProblem } from '../store/digest.js';
import { checkConfigPlatform, hostPlatform, normalizePlatform, platformScore, selectPlatformManifest } from '../store/manifest/platform.js';

interface Vector {
  source: string;
  test: string;
  index: number;
  mediaType: string;
  fail: boolean;
  comment?: string | null;
  title?: string;
  body: string;
  docker_body?: string;
  digest_of_docker_body?: string;
  digest_matches?: boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const VECTOR_FILES = [
  process.env.TSPOD_OCI_VECTORS,
  path.resolve(here, '../../fixtures/oci-image-spec-vectors.json'),
].filter((f): f is string => !!f);
const vectorFile = VECTOR_FILES.find((f) => fs.existsSync(f));
const vectors: Vector[] = vectorFile ? (JSON.parse(fs.readFileSync(vectorFile, 'utf8')) as { vectors: Vector[] }).vectors : [];

const DOCKER_TYPE: Record<string, string> = {
  [MediaType.ociIndex]: MediaType.dockerManifestList,
  [MediaType.ociManifest]: MediaType.dockerManifest,
  [MediaType.ociConfig]: MediaType.dockerConfig,
};

/** Parses a document the way its media type says. */
function parseAs(mediaType: string, body: string): unknown {
  switch (mediaType) {
    case MediaType.ociDescriptor:
      return parseDescriptorBytes(body);
    case MediaType.ociManifest:
    case MediaType.dockerManifest:
      return parseImageManifest(body, mediaType);
    case MediaType.ociIndex:
    case MediaType.dockerManifestList:
      return parseImageIndex(body, mediaType);
    case MediaType.ociConfig:
    case MediaType.dockerConfig:
      return parseImageConfig(body);
    case MediaType.ociLayoutHeader:
      return parseLayoutHeader(body);
    default:
      throw new Error(`no parser for ${mediaType}`);
  }
}

function label(v: Vector): string {
  return `${v.source} ${v.test}#${v.index} (${v.mediaType.replace('application/vnd.oci.', '')}): ${v.comment ?? v.title ?? ''}`;
}

function rejects(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TspodError, `expected a TspodError, got ${String(e)}`);
    assert.equal(e.code, code, e.line);
    if (re) assert.match(e.line, re);
    assert.ok(!e.line.includes('\n'), 'one line');
    return true;
  });
}

describe('OCI image-spec vectors', () => {
  test('the vector file is there', () => {
    assert.ok(vectorFile, 'the OCI vector file was not found: fixtures/oci-image-spec-vectors.json, or TSPOD_OCI_VECTORS');
    assert.ok(vectors.length >= 40, `${vectors.length} vectors`);
  });

  for (const v of vectors) {
    test(label(v), () => {
      if (v.fail) {
        assert.throws(
          () => parseAs(v.mediaType, v.body),
          (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadFormat,
          'must be rejected as BadFormat',
        );
      } else {
        assert.doesNotThrow(() => parseAs(v.mediaType, v.body));
      }
      if (v.docker_body !== undefined) {
        const digest = `sha256:${createHash('sha256').update(v.docker_body).digest('hex')}`;
        assert.equal(digest === v.digest_of_docker_body, v.digest_matches, 'digest of the Docker body');
        const dockerType = DOCKER_TYPE[v.mediaType];
        assert.ok(dockerType);
        if (v.fail) assert.throws(() => parseAs(dockerType, v.docker_body!));
        else assert.doesNotThrow(() => parseAs(dockerType, v.docker_body!));
      }
    });
  }
});

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;
const D3 = `sha256:${'c'.repeat(64)}`;

function manifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: D1, size: 10 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: D2, size: 20 }],
    ...over,
  };
}

function index(entries: Array<Record<string, unknown>>, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: entries, ...over };
}

function entry(platform: Record<string, unknown> | undefined, digest = D3, mediaType: string = MediaType.ociManifest): Record<string, unknown> {
  return platform ? { mediaType, digest, size: 100, platform } : { mediaType, digest, size: 100 };
}

const j = (o: unknown) => JSON.stringify(o);

describe('manifests and indexes', () => {
  test('an OCI manifest parses, with or without its mediaType field', () => {
    const m = parseImageManifest(j(manifest()));
    assert.equal(m.mediaType, MediaType.ociManifest);
    assert.equal(m.layers.length, 1);
    const noField = manifest();
    delete noField.mediaType;
    assert.equal(parseManifestDocument(j(noField)).kind, 'manifest');
    assert.equal(parseManifestDocument(j(noField), MediaType.ociManifest).mediaType, MediaType.ociManifest);
    assert.equal(parseManifestDocument(j(index([]))).kind, 'index');
  });

  test('a Docker schema 2 manifest and manifest list parse', () => {
    const m = parseImageManifest(
      j(
        manifest({
          mediaType: MediaType.dockerManifest,
          config: { mediaType: MediaType.dockerConfig, digest: D1, size: 3 },
          layers: [{ mediaType: MediaType.dockerLayerGzip, digest: D2, size: 4 }],
        }),
      ),
      `${MediaType.dockerManifest}; charset=utf-8`,
    );
    assert.equal(m.mediaType, MediaType.dockerManifest);
    const list = parseImageIndex(j(index([entry({ os: 'linux', architecture: 'amd64' }, D3, MediaType.dockerManifest)], { mediaType: MediaType.dockerManifestList })));
    assert.equal(list.manifests[0].platform?.architecture, 'amd64');
  });

  test('a Docker manifest list entry needs a platform; a Docker manifest needs its mediaType', () => {
    rejects(() => parseImageIndex(j(index([entry(undefined)], { mediaType: MediaType.dockerManifestList }))), ErrorCode.BadFormat, /platform is missing/);
    const m = manifest();
    delete m.mediaType;
    rejects(() => parseImageManifest(j(m), MediaType.dockerManifest), ErrorCode.BadFormat, /mediaType is missing/);
  });

  test('malformed JSON is BadFormat', () => {
    rejects(() => parseManifestDocument('{"schemaVersion": 2,'), ErrorCode.BadFormat, /not valid JSON/);
    rejects(() => parseManifestDocument('[1,2]'), ErrorCode.BadFormat, /JSON object/);
    rejects(() => parseImageConfig('nope'), ErrorCode.BadFormat);
  });

  test('unknown manifest media types are Unsupported; schema 1 too', () => {
    rejects(() => parseManifestDocument(j(manifest({ mediaType: 'application/vnd.example.thing+json' }))), ErrorCode.Unsupported, /not an image manifest or index/);
    rejects(() => parseManifestDocument(j({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] })), ErrorCode.Unsupported, /schema 1/);
    rejects(() => parseManifestDocument('{}', MediaType.dockerSchema1Signed), ErrorCode.Unsupported, /schema 1/);
  });

  test('the document and the type it was served as must agree', () => {
    rejects(() => parseManifestDocument(j(manifest()), MediaType.dockerManifest), ErrorCode.BadFormat, /served as/);
    // generic content types say nothing
    assert.equal(parseManifestDocument(j(manifest()), 'application/json').kind, 'manifest');
    rejects(() => parseImageManifest(j(index([]))), ErrorCode.BadFormat, /index/);
    rejects(() => parseImageIndex(j(manifest())), ErrorCode.BadFormat, /manifest/);
  });

  test('schemaVersion, config and layers are required and typed', () => {
    rejects(() => parseImageManifest(j(manifest({ schemaVersion: 3 }))), ErrorCode.BadFormat, /schemaVersion must be 2/);
    rejects(() => parseImageManifest(j(manifest({ schemaVersion: '2' }))), ErrorCode.BadFormat, /schemaVersion/);
    rejects(() => parseImageManifest(j(manifest({ config: undefined }))), ErrorCode.BadFormat, /config is missing/);
    rejects(() => parseImageManifest(j(manifest({ layers: {} }))), ErrorCode.BadFormat, /layers must be an array/);
    rejects(() => parseImageManifest(j(manifest({ layers: [] }))), ErrorCode.BadFormat, /at least one layer/);
    rejects(() => parseImageManifest(j(manifest({ annotations: { a: 1 } }))), ErrorCode.BadFormat, /annotations/);
    rejects(() => parseImageIndex(j({ schemaVersion: 2, mediaType: MediaType.ociIndex })), ErrorCode.BadFormat, /manifests is missing/);
  });

  test('descriptors: media type, digest and size are checked', () => {
    const layer = (d: Record<string, unknown>) => j(manifest({ layers: [{ mediaType: MediaType.ociLayer, digest: D2, size: 1, ...d }] }));
    rejects(() => parseImageManifest(layer({ size: -1 })), ErrorCode.BadFormat, /layers\[0\]\.size must not be negative/);
    rejects(() => parseImageManifest(layer({ size: 1.5 })), ErrorCode.BadFormat, /integer/);
    rejects(() => parseImageManifest(layer({ size: '1' })), ErrorCode.BadFormat, /integer/);
    rejects(() => parseImageManifest(layer({ digest: 'sha256:abc' })), ErrorCode.BadFormat, /not a valid digest/);
    rejects(() => parseImageManifest(layer({ digest: `sha512:${'a'.repeat(64)}` })), ErrorCode.BadFormat, /digest/);
    rejects(() => parseImageManifest(layer({ mediaType: 'tar' })), ErrorCode.BadFormat, /not a valid media type/);
    rejects(() => parseImageManifest(layer({ urls: ['not a url'] })), ErrorCode.BadFormat, /absolute URI/);
    rejects(() => parseImageManifest(layer({ platform: { os: 'linux' } })), ErrorCode.BadFormat, /architecture is missing/);
    assert.equal(digestProblem(`sha512:${'a'.repeat(128)}`), undefined);
    assert.ok(isValidMediaType('application/vnd.oci.image.layer.v1.tar+gzip'));
    assert.ok(!isValidMediaType('application/'));
  });

  test('embedded data must be padded base64 matching size and digest', () => {
    const data = Buffer.from('hello');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const ok = parseDescriptorBytes(j({ mediaType: 'text/plain', digest, size: 5, data: data.toString('base64') }));
    assert.equal(ok.data, 'aGVsbG8=');
    rejects(() => parseDescriptorBytes(j({ mediaType: 'text/plain', digest, size: 6, data: data.toString('base64') })), ErrorCode.BadFormat, /size/);
    rejects(() => parseDescriptorBytes(j({ mediaType: 'text/plain', digest: D1, size: 5, data: data.toString('base64') })), ErrorCode.BadFormat, /digest/);
  });
});

describe('import-level checks (parseManifestBytes)', () => {
  test('an image manifest passes', () => {
    const m = parseManifestBytes(j(manifest()), MediaType.ociManifest);
    assert.equal(m.config.digest, D1);
  });

  test('an artifact is not an image', () => {
    const artifact = manifest({ artifactType: 'application/vnd.example+type', config: { mediaType: MediaType.ociEmpty, digest: D1, size: 2 } });
    assert.doesNotThrow(() => parseImageManifest(j(artifact)));
    rejects(() => parseManifestBytes(j(artifact)), ErrorCode.Unsupported, /not a container image/);
  });

  test('unknown and encrypted layer media types are refused; foreign ones pass to layerCompression', () => {
    rejects(() => parseManifestBytes(j(manifest({ layers: [{ mediaType: 'application/vnd.example.data', digest: D2, size: 1 }] }))), ErrorCode.Unsupported, /unknown layer media type/);
    rejects(() => parseManifestBytes(j(manifest({ layers: [{ mediaType: `${MediaType.ociLayerGzip}+encrypted`, digest: D2, size: 1 }] }))), ErrorCode.Unsupported, /encrypted/);
    assert.doesNotThrow(() => parseManifestBytes(j(manifest({ layers: [{ mediaType: MediaType.dockerLayerForeignGzip, digest: D2, size: 1, urls: ['https://example.com/x'] }] }))));
  });

  test('digests other than sha256/sha512 are Unsupported for import', () => {
    const m = manifest({ layers: [{ mediaType: MediaType.ociLayer, digest: 'sha256+b64:abcd', size: 1 }] });
    assert.doesNotThrow(() => parseImageManifest(j(m)));
    rejects(() => parseManifestBytes(j(m)), ErrorCode.Unsupported, /sha256 and sha512/);
  });

  test('layerCompression knows the layer types', () => {
    assert.equal(layerCompression(MediaType.ociLayer), 'none');
    assert.equal(layerCompression(MediaType.ociLayerGzip), 'gzip');
    assert.equal(layerCompression(MediaType.ociLayerZstd), 'zstd');
    assert.equal(layerCompression(MediaType.dockerLayerGzip), 'gzip');
    for (const mt of [MediaType.dockerLayerForeignGzip, MediaType.ociLayerNondistributableGzip, MediaType.ociLayerNondistributable]) {
      rejects(() => layerCompression(mt), ErrorCode.Unsupported, /foreign/);
      assert.equal(isSupportedLayerMediaType(mt), false);
    }
    rejects(() => layerCompression('application/x-tar'), ErrorCode.Unsupported, /unknown layer media type/);
  });
});

describe('image config', () => {
  const base = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D1] } };

  test('null counts as absent for optional fields (Docker writes them)', () => {
    const c = parseImageConfig(j({ ...base, config: { Env: null, Volumes: null, Cmd: null, Entrypoint: null, Labels: null } }));
    assert.deepEqual(c.config, {});
  });

  test('required fields and types', () => {
    rejects(() => parseImageConfig(j({ ...base, os: undefined })), ErrorCode.BadFormat, /os is missing/);
    rejects(() => parseImageConfig(j({ ...base, rootfs: { type: 'other', diff_ids: [] } })), ErrorCode.BadFormat, /rootfs.type/);
    rejects(() => parseImageConfig(j({ ...base, rootfs: { type: 'layers', diff_ids: ['x'] } })), ErrorCode.BadFormat, /diff_ids\[0\]/);
    rejects(() => parseImageConfig(j({ ...base, config: { Env: ['NOEQUALS'] } })), ErrorCode.BadFormat, /NAME=VALUE/);
    rejects(() => parseImageConfig(j({ ...base, config: { Cmd: 'sh' } })), ErrorCode.BadFormat, /config.Cmd must be an array/);
    rejects(() => parseImageConfig(j({ ...base, config: { ExposedPorts: { '80/tcp': 1 } } })), ErrorCode.BadFormat, /ExposedPorts/);
    rejects(() => parseImageConfig(j({ ...base, created: 'yesterday' })), ErrorCode.BadFormat, /RFC 3339/);
    rejects(() => parseImageConfig(j({ ...base, history: [{ empty_layer: 'yes' }] })), ErrorCode.BadFormat, /history\[0\]\.empty_layer/);
  });
});

describe('platforms', () => {
  const idx = parseImageIndex(
    j(
      index([
        entry({ os: 'linux', architecture: 'ppc64le' }, `sha256:${'1'.repeat(64)}`),
        entry({ os: 'linux', architecture: 'amd64' }, `sha256:${'2'.repeat(64)}`),
        entry({ os: 'linux', architecture: 'arm', variant: 'v6' }, `sha256:${'3'.repeat(64)}`),
        entry({ os: 'linux', architecture: 'arm', variant: 'v7' }, `sha256:${'4'.repeat(64)}`),
        entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }, `sha256:${'5'.repeat(64)}`),
        entry({ os: 'windows', architecture: 'amd64' }, `sha256:${'6'.repeat(64)}`),
        entry({ os: 'unknown', architecture: 'unknown' }, `sha256:${'7'.repeat(64)}`),
      ]),
    ),
  );
  const pick = (p: { os: string; architecture: string; variant?: string }) => selectPlatformManifest(idx, { platform: p, what: 'docker://x' }).digest[7];

  test('the host platform is in GOARCH names', () => {
    const h = hostPlatform();
    assert.equal(h.os, 'linux');
    assert.ok(['amd64', 'arm64', 'arm', '386', 'ppc64le', 's390x', 'riscv64'].includes(h.architecture), h.architecture);
    if (process.arch === 'x64') assert.deepEqual(h, { os: 'linux', architecture: 'amd64' });
  });

  test('choosing an index entry', () => {
    assert.equal(pick({ os: 'linux', architecture: 'amd64' }), '2');
    assert.equal(pick({ os: 'linux', architecture: 'x86_64' }), '2');
    assert.equal(pick({ os: 'linux', architecture: 'arm64' }), '5');
    assert.equal(pick({ os: 'linux', architecture: 'aarch64' }), '5');
    assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v7' }), '4');
    assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v6' }), '3');
    // a v8 32-bit arm host runs v7 best
    assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v8' }), '4');
    assert.equal(pick({ os: 'windows', architecture: 'amd64' }), '6');
  });

  test('no matching entry is a Platform error listing what there is', () => {
    rejects(() => pick({ os: 'linux', architecture: 'riscv64' }), ErrorCode.Platform, /no image for linux\/riscv64.*linux\/ppc64le, linux\/amd64, linux\/arm\/v6, linux\/arm\/v7, linux\/arm64\/v8, windows\/amd64$/);
    rejects(() => selectPlatformManifest(parseImageIndex(j(index([]))), { platform: { os: 'linux', architecture: 'amd64' }, what: 'x' }), ErrorCode.Platform, /lists no images/);
  });

  test('prefer an exact variant; arm64 without variant is v8', () => {
    const two = parseImageIndex(
      j(index([entry({ os: 'linux', architecture: 'arm', variant: 'v5' }, D1), entry({ os: 'linux', architecture: 'arm', variant: 'v7' }, D2), entry({ os: 'linux', architecture: 'arm64' }, D3)])),
    );
    assert.equal(selectPlatformManifest(two, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, what: 'x' }).digest, D2);
    assert.equal(selectPlatformManifest(two, { platform: { os: 'linux', architecture: 'arm', variant: 'v6' }, what: 'x' }).digest, D1);
    assert.equal(selectPlatformManifest(two, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, what: 'x' }).digest, D3);
    assert.equal(platformScore({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), 0);
    assert.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'armhf' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  });

  test('a single unlabelled entry is used; an index entry that is not a manifest is skipped', () => {
    const one = parseImageIndex(j(index([entry(undefined, D1)])));
    assert.equal(selectPlatformManifest(one, { platform: { os: 'linux', architecture: 'amd64' }, what: 'x' }).digest, D1);
    const custom = parseImageIndex(j(index([entry({ os: 'linux', architecture: 'amd64' }, D1, 'application/customized.manifest+json')])));
    rejects(() => selectPlatformManifest(custom, { platform: { os: 'linux', architecture: 'amd64' }, what: 'x' }), ErrorCode.Platform);
  });

  test('checkConfigPlatform says what the image is for and what the host is', () => {
    const host = { os: 'linux', architecture: 'amd64' };
    assert.doesNotThrow(() => checkConfigPlatform({ os: 'linux', architecture: 'amd64' }, 'docker://x', host));
    rejects(() => checkConfigPlatform({ os: 'windows', architecture: 'amd64' }, 'docker://x', host), ErrorCode.Platform, /^bad os "windows": docker:\/\/x is an image for windows\/amd64, this host is linux\/amd64$/);
    rejects(() => checkConfigPlatform({ os: 'linux', architecture: 'arm64' }, 'docker://x', host), ErrorCode.Platform, /^bad arch "arm64": docker:\/\/x is an image for linux\/arm64, this host is linux\/amd64$/);
    rejects(
      () => checkConfigPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, 'docker://x', { os: 'linux', architecture: 'arm', variant: 'v6' }),
      ErrorCode.Platform,
      /bad arch variant/,
    );
    assert.doesNotThrow(() => checkConfigPlatform({ os: 'linux', architecture: 'arm', variant: 'v6' }, 'x', { os: 'linux', architecture: 'arm', variant: 'v7' }));
    assert.doesNotThrow(() => checkConfigPlatform({ os: 'linux', architecture: 'aarch64' }, 'x', { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  });
});
