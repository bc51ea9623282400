// Local image sources (oci:, oci-archive:, docker-archive:, ACI files and URLs),
// the ACI stream reader and ACI export. Inputs are made by tools that are not
// tspod's (GNU tar, python3's tarfile, skopeo when installed) or by plain JSON.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { TspodError, ErrorCode } from '../native/errors.js';
import { errorLine } from '../cmd/remedies.js';
import { parseImageConfig, parseManifestBytes } from '../store/manifest/oci.js';
import { checkAciPlatform, parseAciStream, validateAciManifest } from '../store/sources/aci.js';
import type { TarEntry } from '../store/tar/entry.js';
import { TarParser, readTar } from '../store/tar/reader.js';
import { openAci } from '../store/sources/aci.js';
import { openDockerArchive } from '../store/sources/docker-archive.js';
import { openOciArchive } from '../store/sources/oci-archive.js';
import { layoutNames, normalizeDockerName, openOciLayout } from '../store/sources/oci-layout.js';
import type { OciCandidate } from '../store/sources/source.js';
import { exportAci } from '../store/export-aci.js';
import { hostPlatform } from '../store/manifest/platform.js';

const ROOT = fs.mkdtempSync(path.join(process.env.TSPOD_TEST_ROOT ?? os.tmpdir(), 'tspod-test-sources-'));
after(() => fs.rmSync(ROOT, { recursive: true, force: true }));
let counter = 0;
function tmp(name: string): string {
  const p = path.join(ROOT, `${name}-${++counter}`);
  fs.mkdirSync(p, { recursive: true });
  return p;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const isRoot = process.getuid?.() === 0;
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function expectError(p: Promise<unknown> | (() => unknown), code: string, re: RegExp): Promise<void> {
  try {
    if (typeof p === 'function') await p();
    else await p;
  } catch (e) {
    assert.ok(e instanceof TspodError, `expected a TspodError, got ${String(e)}`);
    const line = errorLine(e); // what the user sees: with the remedy's words (cmd/remedies.ts)
    assert.equal(e.code, code, line);
    assert.match(line, re);
    return;
  }
  assert.fail(`expected an error matching ${re}`);
}

// ---------------------------------------------------------------------------
// OCI layouts made with plain JSON and GNU tar
// ---------------------------------------------------------------------------

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

function putBlob(layout: string, bytes: Buffer): string {
  const digest = sha256(bytes);
  const dir = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, digest.slice(7)), bytes);
  return digest;
}

/** One image (gzip layer made by GNU tar from `files`); returns its manifest descriptor. */
function makeImage(layout: string, files: Record<string, string>, arch = hostPlatform().architecture): Desc {
  const src = tmp('layer-src');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), content);
  }
  const tarBytes = execFileSync('tar', ['-C', src, '--sort=name', '--owner=0', '--group=0', '--mtime=@0', '-cf', '-', '.']);
  const gz = zlib.gzipSync(tarBytes);
  const layerDigest = putBlob(layout, gz);
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha256(tarBytes)] } }),
  );
  const configDigest = putBlob(layout, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: gz.length }],
    }),
  );
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: putBlob(layout, manifest), size: manifest.length };
}

function makeIndexBlob(layout: string, manifests: Desc[]): Desc {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  return { mediaType: 'application/vnd.oci.image.index.v1+json', digest: putBlob(layout, bytes), size: bytes.length };
}

function writeLayout(layout: string, manifests: Desc[]): void {
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}

const tagged = (d: Desc, tag: string): Desc => ({ ...d, annotations: { 'org.opencontainers.image.ref.name': tag } });

/** Reads every blob the candidate's manifest names and checks it against its descriptor. */
async function checkBlobs(c: OciCandidate): Promise<{ config: Buffer; layers: Buffer[] }> {
  assert.equal(sha256(c.manifest.bytes), c.manifest.ref.digest);
  assert.equal(c.manifest.bytes.length, c.manifest.ref.size);
  const m = parseManifestBytes(c.manifest.bytes, c.manifest.ref.mediaType);
  const config = await readAll(await c.openBlob(m.config));
  assert.equal(sha256(config), m.config.digest);
  assert.equal(config.length, m.config.size);
  const layers: Buffer[] = [];
  for (const l of m.layers) {
    const b = await readAll(await c.openBlob(l));
    assert.equal(sha256(b), l.digest, `layer ${l.digest}`);
    assert.equal(b.length, l.size);
    layers.push(b);
  }
  const cfg = parseImageConfig(config);
  assert.equal(cfg.rootfs.diff_ids.length, m.layers.length);
  return { config, layers };
}

/** The files of an (uncompressed or gzip) layer tar. */
function layerFiles(layer: Buffer): string[] {
  const plain = layer[0] === 0x1f && layer[1] === 0x8b ? zlib.gunzipSync(layer) : layer;
  return execFileSync('tar', ['-tf', '-'], { input: plain })
    .toString()
    .split('\n')
    .filter((l) => l && !l.endsWith('/'))
    .map((l) => l.replace(/^\.\//, ''))
    .sort();
}

describe('oci: layouts', () => {
  let layout: string;
  let v1: Desc;
  let v2: Desc;
  let latest: Desc;
  let other: Desc;
  let multi: Desc;

  before(() => {
    layout = path.join(tmp('layouts'), 'My_Image');
    fs.mkdirSync(layout);
    v1 = makeImage(layout, { 'etc/version': '1' });
    v2 = makeImage(layout, { 'etc/version': '2' });
    latest = makeImage(layout, { 'etc/version': 'latest' });
    const foreign = makeImage(layout, { 'etc/arch': 'other' }, hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64');
    other = makeImage(layout, { 'etc/arch': 'host' });
    multi = makeIndexBlob(layout, [
      { ...foreign, platform: { os: 'linux', architecture: hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64' } },
      { ...other, platform: { os: 'linux', architecture: hostPlatform().architecture } },
      { ...v1, platform: { os: 'unknown', architecture: 'unknown' } },
    ]);
    writeLayout(layout, [tagged(v1, 'v1'), tagged(v2, 'v2'), tagged(latest, 'latest'), tagged(multi, 'multi'), tagged(v1, 'docker.io/library/busybox:1.36')]);
  });

  test('TAG picks the ref.name; names are localhost/<dir>:<tag>', async () => {
    const c = await openOciLayout(layout, 'v2');
    assert.equal(c.kind, 'oci');
    assert.equal(c.manifest.ref.digest, v2.digest);
    assert.equal(c.source, `oci:${layout}:v2`);
    assert.deepEqual(c.names, ['localhost/my_image:v2']);
    assert.equal(c.index, undefined);
    const { layers } = await checkBlobs(c);
    assert.deepEqual(layerFiles(layers[0]), ['etc/version']);
  });

  test('no TAG: latest when there are several', async () => {
    const c = await openOciLayout(layout);
    assert.equal(c.manifest.ref.digest, latest.digest);
    assert.deepEqual(c.names, ['localhost/my_image:latest']);
  });

  test('an index entry resolves to the host platform, and is kept', async () => {
    const c = await openOciLayout(layout, 'multi');
    assert.equal(c.manifest.ref.digest, other.digest);
    assert.equal(c.index?.ref.digest, multi.digest);
    assert.equal(sha256(c.index!.bytes), multi.digest);
    const { layers } = await checkBlobs(c);
    assert.deepEqual(layerFiles(layers[0]), ['etc/arch']);
    const arm = await openOciLayout(layout, 'multi', { platform: { os: 'linux', architecture: hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64' } });
    assert.notEqual(arm.manifest.ref.digest, other.digest);
    await expectError(openOciLayout(layout, 'multi', { platform: { os: 'linux', architecture: 's390x' } }), ErrorCode.Platform, /has no image for linux\/s390x.*it has linux\//);
  });

  test('a ref.name that is a whole reference is recorded normalised', async () => {
    const c = await openOciLayout(layout, 'docker.io/library/busybox:1.36');
    assert.equal(c.manifest.ref.digest, v1.digest);
    assert.deepEqual(c.names, ['docker.io/library/busybox:1.36']);
  });

  test('@N picks by position', async () => {
    const c = await openOciLayout(layout, '@1');
    assert.equal(c.manifest.ref.digest, v2.digest);
    assert.deepEqual(c.names, ['localhost/my_image:v2']);
    await expectError(openOciLayout(layout, '@9'), ErrorCode.NotFound, /has no image @9.*@0 to @4/);
  });

  test('an unknown tag lists the tags', async () => {
    await expectError(openOciLayout(layout, 'v3'), ErrorCode.NotFound, /no image tagged "v3" in oci:.*its tags: v1, v2, latest, multi/);
  });

  test('several untagged images and no latest: say which', async () => {
    const dir = tmp('ambiguous');
    writeLayout(dir, [tagged(makeImage(dir, { a: '1' }), 'a'), tagged(makeImage(dir, { b: '2' }), 'b')]);
    await expectError(openOciLayout(dir), ErrorCode.Ambiguous, /holds 2 images; say which one with oci:.*:TAG: its tags: a, b/);
  });

  test('one untagged image is taken without a tag', async () => {
    const dir = path.join(tmp('single'), 'busybox');
    fs.mkdirSync(dir);
    const d = makeImage(dir, { bin: 'x' });
    writeLayout(dir, [d]);
    const c = await openOciLayout(dir);
    assert.equal(c.manifest.ref.digest, d.digest);
    assert.deepEqual(c.names, ['localhost/busybox:latest']);
    await checkBlobs(c);
  });

  test('not a layout, missing, missing blob, tampered index', async () => {
    const empty = tmp('notlayout');
    await expectError(openOciLayout(empty), ErrorCode.BadFormat, /is not an OCI image layout: it has no oci-layout file/);
    await expectError(openOciLayout(path.join(empty, 'nope')), ErrorCode.NotFound, /does not exist/);
    fs.writeFileSync(path.join(empty, 'file'), 'x');
    await expectError(openOciLayout(path.join(empty, 'file')), ErrorCode.BadInput, /not a directory.*oci-archive:/);
    fs.writeFileSync(path.join(empty, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '2.0.0' }));
    await expectError(openOciLayout(empty), ErrorCode.Unsupported, /imageLayoutVersion "2.0.0"/);

    const broken = tmp('broken');
    const d = makeImage(broken, { x: 'y' });
    writeLayout(broken, [d]);
    fs.rmSync(path.join(broken, 'blobs', 'sha256', d.digest.slice(7)));
    await expectError(openOciLayout(broken), ErrorCode.NotFound, new RegExp(`blob ${d.digest} is missing from oci:`));

    const tampered = tmp('tampered');
    const img = makeImage(tampered, { x: 'y' });
    const idx = makeIndexBlob(tampered, [{ ...img, platform: { os: 'linux', architecture: hostPlatform().architecture } }]);
    fs.appendFileSync(path.join(tampered, 'blobs', 'sha256', idx.digest.slice(7)), ' ');
    writeLayout(tampered, [idx]);
    await expectError(openOciLayout(tampered), ErrorCode.DigestMismatch, /image index/);
  });

  test('oci-archive: a tar of the layout, plain and gzip', async () => {
    const dir = tmp('archives');
    const plain = path.join(dir, 'my-image.tar');
    execFileSync('tar', ['-C', layout, '-cf', plain, '.']);
    const c = await openOciArchive(plain, 'v1');
    assert.equal(c.manifest.ref.digest, v1.digest);
    assert.equal(c.source, `oci-archive:${plain}:v1`);
    assert.deepEqual(c.names, ['localhost/my-image:v1']);
    await checkBlobs(c);
    await c.close?.();

    const multiC = await openOciArchive(plain, 'multi');
    assert.equal(multiC.manifest.ref.digest, other.digest);
    await checkBlobs(multiC);
    await multiC.close?.();

    const gz = path.join(dir, 'my-image.tar.gz');
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(plain)));
    const scratch = path.join(dir, 'scratch');
    const g = await openOciArchive(gz, 'v2', { scratchDir: scratch });
    assert.equal(g.manifest.ref.digest, v2.digest);
    assert.deepEqual(g.names, ['localhost/my-image:v2']);
    await checkBlobs(g);
    assert.ok(fs.existsSync(scratch));
    await g.close?.();
    assert.ok(!fs.existsSync(scratch), 'close() removes the decompressed copy');

    await expectError(openOciArchive(path.join(dir, 'nope.tar'), undefined), ErrorCode.NotFound, /does not exist/);
    fs.writeFileSync(path.join(dir, 'junk.tar'), Buffer.alloc(2000, 7));
    await expectError(openOciArchive(path.join(dir, 'junk.tar'), undefined), ErrorCode.BadFormat, /not a tar archive/);
    await expectError(openOciArchive(layout, undefined), ErrorCode.BadInput, /is a directory.*oci:/);
    await expectError(openOciArchive(plain, 'nope'), ErrorCode.NotFound, /no image tagged "nope" in oci-archive:/);
  });

  test('skopeo-made oci-archive and docker-archive', { skip: !have('skopeo') && 'skopeo not installed' }, async () => {
    const dir = tmp('skopeo');
    const policy = path.join(dir, 'policy.json');
    fs.writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const skopeo = (...args: string[]) => execFileSync('skopeo', ['--policy', policy, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

    const ociTar = path.join(dir, 'img-oci.tar');
    skopeo('copy', `oci:${layout}:v2`, `oci-archive:${ociTar}:stable`);
    const c = await openOciArchive(ociTar, 'stable');
    assert.deepEqual(c.names, ['localhost/img-oci:stable']);
    const { layers } = await checkBlobs(c);
    assert.deepEqual(layerFiles(layers[0]), ['etc/version']);
    await c.close?.();

    const dockerTar = path.join(dir, 'saved.tar');
    skopeo('copy', `oci:${layout}:v1`, `docker-archive:${dockerTar}:example.com/app:1.0`);
    const d = await openDockerArchive(dockerTar, undefined);
    assert.deepEqual(d.names, ['example.com/app:1.0']);
    assert.equal(d.manifest.ref.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(d.source, `docker-archive:${dockerTar}`);
    const blobs = await checkBlobs(d);
    assert.deepEqual(layerFiles(blobs.layers[0]), ['etc/version']);
    await d.close?.();
    const named = await openDockerArchive(dockerTar, 'example.com/app:1.0');
    assert.equal(named.manifest.ref.digest, d.manifest.ref.digest, 'the synthesized manifest is deterministic');
    await expectError(openDockerArchive(dockerTar, 'example.com/app:2.0'), ErrorCode.NotFound, /no image named "example.com\/app:2.0".*it has example.com\/app:1.0/);
    await expectError(openOciArchive(dockerTar, undefined), ErrorCode.BadFormat, /not an OCI archive.*docker-archive:/);
    await expectError(openDockerArchive(ociTar, undefined), ErrorCode.BadFormat, /not a docker archive.*oci-archive:/);
  });
});

// ---------------------------------------------------------------------------
// docker-archive made by hand: old docker's layout with a symlinked layer,
// gzip layers, several images
// ---------------------------------------------------------------------------

describe('docker-archive:', () => {
  let file: string;
  let layerA: Buffer;
  let layerB: Buffer;

  before(() => {
    const dir = tmp('docker-archive');
    const root = path.join(dir, 'root');
    fs.mkdirSync(root);
    const mk = (files: Record<string, string>) => {
      const src = tmp('dl');
      for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(src, n), c);
      return execFileSync('tar', ['-C', src, '--sort=name', '--owner=0', '--group=0', '--mtime=@0', '-cf', '-', '.']);
    };
    layerA = mk({ a: 'A' });
    layerB = mk({ b: 'B' });
    const idA = 'a'.repeat(64);
    const idB = 'b'.repeat(64);
    const idC = 'c'.repeat(64);
    for (const id of [idA, idB, idC]) fs.mkdirSync(path.join(root, id));
    fs.writeFileSync(path.join(root, idA, 'layer.tar'), layerA);
    fs.writeFileSync(path.join(root, idB, 'layer.tar'), zlib.gzipSync(layerB));
    // old docker: a repeated layer is a symlink to the first copy
    fs.symlinkSync(`../${idA}/layer.tar`, path.join(root, idC, 'layer.tar'));
    const config = (ids: Buffer[]) =>
      JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: ids.map((b) => sha256(b)) } });
    fs.writeFileSync(path.join(root, 'one.json'), config([layerA, layerB]));
    fs.writeFileSync(path.join(root, 'two.json'), config([layerA]));
    fs.writeFileSync(
      path.join(root, 'manifest.json'),
      JSON.stringify([
        { Config: 'one.json', RepoTags: ['busybox:latest', 'quay.io/x/one:1'], Layers: [`${idA}/layer.tar`, `${idB}/layer.tar`] },
        { Config: 'two.json', RepoTags: null, Layers: [`${idC}/layer.tar`] },
      ]),
    );
    file = path.join(dir, 'saved.tar');
    execFileSync('tar', ['-C', root, '-cf', file, 'manifest.json', 'one.json', 'two.json', idA, idB, idC]);
  });

  test('picks by name, synthesizes a schema 2 manifest with real digests', async () => {
    const c = await openDockerArchive(file, 'busybox');
    assert.deepEqual(c.names, ['docker.io/library/busybox:latest', 'quay.io/x/one:1']);
    assert.equal(c.source, `docker-archive:${file}:busybox`);
    const m = parseManifestBytes(c.manifest.bytes, c.manifest.ref.mediaType);
    assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.deepEqual(
      m.layers.map((l) => l.mediaType),
      ['application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    );
    assert.equal(m.layers[0].digest, sha256(layerA));
    const { layers } = await checkBlobs(c);
    assert.deepEqual(zlib.gunzipSync(layers[1]), layerB);
    const again = await openDockerArchive(file, 'docker.io/library/busybox:latest');
    assert.equal(again.manifest.ref.digest, c.manifest.ref.digest);
  });

  test('@N, symlinked layers, untagged images', async () => {
    const c = await openDockerArchive(file, '@1');
    assert.deepEqual(c.names, []);
    const { layers } = await checkBlobs(c);
    assert.deepEqual(layers[0], layerA);
  });

  test('several images need a name', async () => {
    await expectError(openDockerArchive(file, undefined), ErrorCode.Ambiguous, /holds 2 images.*busybox:latest, quay.io\/x\/one:1/);
    await expectError(openDockerArchive(file, '@5'), ErrorCode.NotFound, /no image @5/);
  });

  test('normalizeDockerName and layout names', () => {
    assert.equal(normalizeDockerName('busybox'), 'docker.io/library/busybox:latest');
    assert.equal(normalizeDockerName('user/app:1'), 'docker.io/user/app:1');
    assert.equal(normalizeDockerName('localhost:5000/a/b'), 'localhost:5000/a/b:latest');
    assert.equal(normalizeDockerName('index.docker.io/library/x:2'), 'docker.io/library/x:2');
    assert.equal(normalizeDockerName('Bad/Name'), undefined);
    assert.deepEqual(layoutNames('Some Dir!', 'v1', false), ['localhost/some-dir:v1']);
    assert.deepEqual(layoutNames('x', 'not a tag', false), []);
    assert.deepEqual(layoutNames('x', undefined, false), []);
  });
});

// ---------------------------------------------------------------------------
// ACIs
// ---------------------------------------------------------------------------

const MANIFEST = {
  acKind: 'ImageManifest',
  acVersion: '0.8.11',
  name: 'example.com/test-aci',
  labels: [
    { name: 'version', value: '1.0.0' },
    { name: 'os', value: 'linux' },
    { name: 'arch', value: 'amd64' },
  ],
  app: { exec: ['/bin/sh'], user: '0', group: '0' },
};

const LONG_DIR = 'rootfs/' + 'd'.repeat(90) + '/' + 'e'.repeat(90);
const LONG_FILE = `${LONG_DIR}/${'f'.repeat(120)}.txt`;

/**
 * An ACI written by python3's tarfile: `spec` is a JSON list of entries
 * {name, type: file|dir|symlink|hardlink|char, data?, link?, mode?, uid?, xattrs?}.
 */
function pythonTar(out: string, spec: unknown[], format: 'pax' | 'gnu' = 'pax'): void {
  const script = `
import json, sys, tarfile, io
out, fmt, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT if fmt == 'pax' else tarfile.GNU_FORMAT) as t:
    for e in spec:
        ti = tarfile.TarInfo(e['name'])
        ti.mtime = e.get('mtime', 1600000000)
        ti.mode = e.get('mode', 0o755 if e['type'] == 'dir' else 0o644)
        ti.uid = e.get('uid', 0); ti.gid = e.get('gid', 0)
        data = None
        if e['type'] == 'dir': ti.type = tarfile.DIRTYPE
        elif e['type'] == 'symlink': ti.type = tarfile.SYMTYPE; ti.linkname = e['link']
        elif e['type'] == 'hardlink': ti.type = tarfile.LNKTYPE; ti.linkname = e['link']
        elif e['type'] == 'char': ti.type = tarfile.CHRTYPE; ti.devmajor = e['major']; ti.devminor = e['minor']
        else:
            data = e.get('data', '').encode(); ti.size = len(data)
        if 'xattrs' in e:
            ti.pax_headers = {'SCHILY.xattr.' + k: v for k, v in e['xattrs'].items()}
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;
  execFileSync('python3', ['-c', script, out, format, JSON.stringify(spec)]);
}

function aciSpec(manifest: unknown = MANIFEST): unknown[] {
  return [
    { name: 'manifest', type: 'file', data: JSON.stringify(manifest) },
    { name: 'rootfs', type: 'dir', mode: 0o755 },
    { name: 'rootfs/bin', type: 'dir' },
    { name: 'rootfs/bin/tool', type: 'file', data: '#!/bin/sh\necho hi\n', mode: 0o4755, uid: 1000, gid: 1001 },
    { name: 'rootfs/bin/tool2', type: 'hardlink', link: 'rootfs/bin/tool' },
    { name: 'rootfs/bin/sh', type: 'symlink', link: '/bin/busybox' },
    { name: 'rootfs/dev', type: 'dir' },
    { name: 'rootfs/dev/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
    { name: 'rootfs/attr', type: 'file', data: 'x', xattrs: { 'user.comment': 'héllo', 'security.capability': 'cap' } },
    { name: 'rootfs/' + 'd'.repeat(90), type: 'dir' },
    { name: LONG_DIR, type: 'dir' },
    { name: LONG_FILE, type: 'file', data: 'long' },
    { name: 'rootfs/ünïcödé', type: 'file', data: 'u' },
  ];
}

interface Seen {
  entry: TarEntry;
  data: Buffer;
}

async function tarEntries(stream: Readable): Promise<Seen[]> {
  const out: Seen[] = [];
  const parser = new TarParser({
    entry: (entry) => {
      const parts: Buffer[] = [];
      return { write: (d) => parts.push(Buffer.from(d)), end: () => out.push({ entry, data: Buffer.concat(parts) }) };
    },
  });
  await readTar(stream, parser);
  return out;
}

/** What python3's tarfile sees in a tar: name, type, link, mode, uid, size, pax headers. */
function pythonList(file: string): Array<{ name: string; type: string; link: string; mode: number; uid: number; size: number; pax: Record<string, string>; major: number }> {
  const script = `
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    print(json.dumps([{'name': m.name, 'type': m.type.decode(), 'link': m.linkname, 'mode': m.mode, 'uid': m.uid, 'size': m.size, 'pax': m.pax_headers, 'major': m.devmajor} for m in t.getmembers()]))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, file]).toString()) as ReturnType<typeof pythonList>;
}

describe('ACI reading', () => {
  test('parseAciStream splits rootfs/ off, keeping PAX records, links, devices', async () => {
    const aci = path.join(tmp('aci'), 'test.aci');
    pythonTar(aci, aciSpec());
    const input = fs.createReadStream(aci);
    let inputEnded = false;
    input.on('end', () => (inputEnded = true));
    const parsed = parseAciStream(input, aci);
    const rootfsFile = path.join(path.dirname(aci), 'rootfs.tar');
    fs.writeFileSync(rootfsFile, await readAll(parsed.rootfsTar));
    const manifest = await parsed.manifest;
    assert.equal(manifest.name, 'example.com/test-aci');
    assert.ok(inputEnded, 'the whole input is read, padding included');

    // python's tarfile reads what we wrote
    const listed = pythonList(rootfsFile);
    const byName = new Map(listed.map((m) => [m.name, m]));
    assert.deepEqual(
      listed.map((m) => m.name),
      ['.', 'bin', 'bin/tool', 'bin/tool2', 'bin/sh', 'dev', 'dev/null', 'attr', 'd'.repeat(90), LONG_DIR.slice(7), LONG_FILE.slice(7), 'ünïcödé'],
    );
    assert.equal(byName.get('bin/tool')!.mode, 0o4755);
    assert.equal(byName.get('bin/tool')!.uid, 1000);
    assert.equal(byName.get('bin/tool2')!.type, '1');
    assert.equal(byName.get('bin/tool2')!.link, 'bin/tool');
    assert.equal(byName.get('bin/sh')!.link, '/bin/busybox');
    assert.equal(byName.get('dev/null')!.type, '3');
    assert.equal(byName.get('dev/null')!.major, 1);
    assert.equal(byName.get('attr')!.pax['SCHILY.xattr.user.comment'], 'héllo');
    assert.equal(byName.get('attr')!.pax['SCHILY.xattr.security.capability'], 'cap');
    // GNU tar agrees
    const gnu = execFileSync('tar', ['-tf', rootfsFile]).toString().split('\n').filter(Boolean);
    assert.ok(gnu.includes(LONG_FILE.slice(7)), 'GNU tar sees the long name');
    const content = execFileSync('tar', ['-xOf', rootfsFile, LONG_FILE.slice(7)]).toString();
    assert.equal(content, 'long');
  });

  test('GNU long names, manifest last, ./ prefixes', async () => {
    const dir = tmp('aci-gnu');
    const aci = path.join(dir, 'gnu.aci');
    const spec = (aciSpec() as Array<{ name: string; type: string; link?: string }>).map((e) => ({ ...e, name: `./${e.name}` }));
    // manifest last
    spec.push(spec.shift()!);
    for (const e of spec) if (e.type === 'hardlink') e.link = `./${e.link}`;
    pythonTar(aci, spec.filter((e) => !('xattrs' in (e as object))), 'gnu');
    const parsed = parseAciStream(fs.createReadStream(aci), aci);
    const entries = await tarEntries(parsed.rootfsTar);
    assert.equal((await parsed.manifest).name, 'example.com/test-aci');
    const names = entries.map((s) => s.entry.path);
    assert.ok(names.includes(LONG_FILE.slice(7)), names.join(' '));
    const hl = entries.find((s) => s.entry.type === 'hardlink')!;
    assert.equal(hl.entry.linkpath, 'bin/tool');
    assert.equal(entries.find((s) => s.entry.path === LONG_FILE.slice(7))!.data.toString(), 'long');
  });

  const broken: Array<[string, unknown[], string, RegExp]> = [
    ['no manifest', aciSpec().slice(1), ErrorCode.BadFormat, /ACI .*bad.aci has no manifest/],
    ['no rootfs', aciSpec().slice(0, 1), ErrorCode.BadFormat, /ACI .*bad.aci has no rootfs\/ directory/],
    ['unexpected entry', [...aciSpec(), { name: 'extra/file', type: 'file', data: 'x' }], ErrorCode.BadFormat, /unexpected top-level entry "extra".*only manifest and rootfs/],
    ['two manifests', [...aciSpec(), { name: 'manifest', type: 'file', data: '{}' }], ErrorCode.BadFormat, /more than one manifest/],
    ['hard link out of rootfs', [...aciSpec(), { name: 'rootfs/evil', type: 'hardlink', link: 'manifest' }], ErrorCode.UnsafeLayer, /hard link to "manifest", outside rootfs/],
    ['manifest not JSON', [{ name: 'manifest', type: 'file', data: '{' }, ...aciSpec().slice(1)], ErrorCode.BadFormat, /manifest is not valid JSON/],
    ['bad acKind', aciSpec({ ...MANIFEST, acKind: 'PodManifest' }), ErrorCode.BadFormat, /missing or bad acKind \(must be "ImageManifest"\)/],
    ['bad acVersion', aciSpec({ ...MANIFEST, acVersion: 'one' }), ErrorCode.BadFormat, /bad acVersion "one": not a semantic version/],
    ['bad name', aciSpec({ ...MANIFEST, name: 'Example.com/X' }), ErrorCode.BadFormat, /bad name "Example.com\/X": an AC Identifier/],
    ['a name ending in "-"', aciSpec({ ...MANIFEST, name: 'example.com/x-' }), ErrorCode.BadFormat, /bad name "example.com\/x-": an AC Identifier/],
    ['a mount point path with ".."', aciSpec({ ...MANIFEST, app: { ...MANIFEST.app, mountPoints: [{ name: 'data', path: '/../x' }] } }), ErrorCode.BadFormat, /mount point data path "\/\.\.\/x" has a "\.\." component$/],
    ['a working directory with ".."', aciSpec({ ...MANIFEST, app: { ...MANIFEST.app, workingDirectory: '/a/../../b' } }), ErrorCode.BadFormat, /working directory "\/a\/\.\.\/\.\.\/b" has a "\.\." component$/],
    ['a relative pathWhitelist entry', aciSpec({ ...MANIFEST, pathWhitelist: ['/bin/sh', 'etc'] }), ErrorCode.BadFormat, /pathWhitelist entry "etc" is not an absolute path/],
    ['a dependency imageID that is not sha512-hex', aciSpec({ ...MANIFEST, dependencies: [{ imageName: 'example.com/base', imageID: 'sha256-ab' }] }), ErrorCode.BadFormat, /dependency "example.com\/base": imageID must be sha512- and hex digits/],
    ['no user', aciSpec({ ...MANIFEST, app: { exec: ['/x'], group: '0' } }), ErrorCode.BadFormat, /app.user is required/],
  ];
  for (const [name, spec, code, re] of broken) {
    test(`refuses: ${name}`, async () => {
      const aci = path.join(tmp('aci-bad'), 'bad.aci');
      pythonTar(aci, spec);
      const parsed = parseAciStream(fs.createReadStream(aci), aci);
      await expectError(readAll(parsed.rootfsTar), code, re);
      await expectError(parsed.manifest, code, re);
    });
  }

  test('refuses what is not a tar', async () => {
    const parsed = parseAciStream(Readable.from([Buffer.alloc(1024, 0x41)]), 'x.aci');
    await expectError(parsed.manifest, ErrorCode.BadFormat, /not a valid tar archive/);
    const empty = parseAciStream(Readable.from([]), 'x.aci');
    await expectError(empty.manifest, ErrorCode.BadFormat, /the input is empty/);
    const aci = path.join(tmp('aci-trunc'), 't.aci');
    pythonTar(aci, aciSpec());
    const cut = fs.readFileSync(aci).subarray(0, 2048 + 100);
    await expectError(parseAciStream(Readable.from([cut]), 't.aci').manifest, ErrorCode.BadFormat, /truncated|no rootfs/);
  });

  test("rkt's os/arch checks before running", () => {
    assert.throws(() => checkAciPlatform({ labels: [{ name: 'arch', value: 'amd64' }] }), /^Error: missing os label in the image manifest$|missing os label in the image manifest/);
    assert.throws(() => checkAciPlatform({ labels: [{ name: 'os', value: 'linux' }] }), /missing arch label in the image manifest/);
    assert.throws(() => checkAciPlatform({ labels: [{ name: 'os', value: 'freebsd' }, { name: 'arch', value: 'amd64' }] }), /bad os "freebsd"/);
    const hostArch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'aarch64' : undefined;
    if (hostArch) {
      checkAciPlatform({ labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: hostArch }] });
      assert.throws(
        () => checkAciPlatform({ labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: hostArch === 'amd64' ? 'aarch64' : 'amd64' }] }),
        (e: unknown) => e instanceof TspodError && e.code === ErrorCode.Platform && /bad arch/.test(e.message),
      );
    }
    assert.equal(validateAciManifest(MANIFEST, 'x').name, MANIFEST.name);
    // The labels are checked there, not when the manifest is read: a foreign image can be fetched.
    for (const labels of [
      [{ name: 'os', value: 'linux' }, { name: 'arch', value: 'arm64' }],
      [{ name: 'os', value: 'freebsd' }, { name: 'arch', value: 'amd64' }],
      [{ name: 'os', value: 'windows' }],
      [],
    ]) {
      assert.equal(validateAciManifest({ ...MANIFEST, labels }, 'x').name, MANIFEST.name);
    }
    if (hostArch === 'amd64') {
      assert.throws(() => checkAciPlatform({ name: 'example.com/arm', labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: 'arm64' }] }), (e: unknown) => {
        assert.ok(e instanceof TspodError && e.code === ErrorCode.Platform);
        assert.equal(e.line, 'bad arch "arm64" for linux (must be one of: [amd64]): image "example.com/arm" is for linux/arm64, this host runs linux/amd64');
        return true;
      });
    }
  });

  test("appc's AC Identifier: the characters and both ends only", () => {
    for (const name of ['example.com/shorthash--50', 'a', 'a.b~c/d-e', 'x//y', 'x-._~/y', 'x_y']) {
      assert.equal(validateAciManifest({ ...MANIFEST, name }, 'x').name, name, name);
    }
    for (const name of ['example.com/x-', '-x', 'x/', '_x', 'Example.com/x', 'x:y', 'x y', '']) {
      assert.throws(() => validateAciManifest({ ...MANIFEST, name }, 'x'), /bad name|name must be set/, name);
    }
  });
});

describe('openAci', () => {
  test('files', async () => {
    const dir = tmp('open-aci');
    const aci = path.join(dir, 'a.aci');
    pythonTar(aci, aciSpec());
    const c = await openAci(aci);
    assert.equal(c.kind, 'aci');
    assert.equal(c.source, aci);
    assert.equal(c.size, fs.statSync(aci).size);
    assert.deepEqual(await readAll(await c.open()), fs.readFileSync(aci));
    const viaUrl = await openAci(`file://${aci}`);
    assert.equal(viaUrl.source, aci);
    await expectError(openAci(path.join(dir, 'missing.aci')), ErrorCode.NotFound, /ACI file ".*missing.aci" does not exist/);
    await expectError(openAci(dir), ErrorCode.BadInput, /is a directory, not an ACI file: for an OCI image layout use oci:/);
  });

  test('URLs: plain HTTP as given (as rkt); a redirect from https to http needs --insecure-options=http', async () => {
    const body = Buffer.from('pretend this is an ACI');
    const server = http.createServer((req, res) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/img.aci' });
        res.end();
      } else if (req.url === '/img.aci') {
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // An https server whose redirect goes to the plain one.
    const key = path.join(tmp('tls'), 'key.pem');
    const cert = path.join(path.dirname(key), 'cert.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const base = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tls = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (_req, res) => {
      res.writeHead(302, { location: `${base()}/img.aci` });
      res.end();
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const c = await openAci(`${base()}/img.aci`);
      assert.equal(c.size, body.length);
      assert.equal(c.source, `${base()}/img.aci`);
      assert.deepEqual(await readAll(await c.open()), body);
      await c.close?.();
      const r = await openAci(`${base()}/redirect`);
      assert.deepEqual(await readAll(await r.open()), body);
      await r.close?.();
      const secure = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/x.aci`;
      await expectError(openAci(secure, { insecure: { http: false, tls: true } }), ErrorCode.Network, /^unable to fetch image from https:.*: refusing to follow its redirect from https to plain http \(http:.*--insecure-options=http/);
      const down = await openAci(secure, { insecure: { http: true, tls: true } });
      assert.deepEqual(await readAll(await down.open()), body);
      await down.close?.();
      await expectError(openAci(`${base()}/missing.aci`), ErrorCode.NotFound, /HTTP 404/);
      await expectError(openAci('http://127.0.0.1:1/x.aci'), ErrorCode.Network, /unable to fetch image from/);
    } finally {
      server.closeAllConnections();
      tls.closeAllConnections();
      await new Promise((r) => server.close(r));
      await new Promise((r) => tls.close(r));
    }
  });

  test('URL redirects (store/sources/http.ts): at most 10, to http or https only', async () => {
    const server = http.createServer((req, res) => {
      const n = Number(/^\/hop(\d+)$/.exec(req.url ?? '')?.[1] ?? NaN);
      if (req.url === '/ftp') res.writeHead(302, { location: 'ftp://127.0.0.1/x.aci' });
      else if (req.url === '/nowhere') res.writeHead(302);
      else if (Number.isInteger(n)) res.writeHead(302, { location: `/hop${n + 1}` });
      else res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expectError(openAci(`${base}/hop0`), ErrorCode.Network, /^unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/hop0: more than 10 redirects$/);
      await expectError(openAci(`${base}/ftp`), ErrorCode.Network, /^unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/ftp: it redirects to an unsupported URL scheme ftp:$/);
      await expectError(openAci(`${base}/nowhere`), ErrorCode.Network, /: it answered 302 without a Location$/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('URLs have timeouts (store/sources/http.ts): no response headers, or a body that stops, fail with one line', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/stall.aci') {
        res.writeHead(200, { 'content-length': '1048576' });
        res.write(Buffer.alloc(4096)); // …and nothing more
      } // any other path: no answer at all
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expectError(openAci(`${base}/hang.aci`, { timeoutMs: 300 }), ErrorCode.Network, /^unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/hang\.aci: no response within 300 ms$/);
      const c = await openAci(`${base}/stall.aci`, { idleTimeoutMs: 300 });
      try {
        await expectError(readAll(await c.open()), ErrorCode.Network, /^unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/stall\.aci: the download of the ACI stalled: nothing received for 300 ms$/);
      } finally {
        await c.close?.();
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

// ---------------------------------------------------------------------------
// ACI export
// ---------------------------------------------------------------------------

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  link?: string;
  hash?: string;
  rdev?: string;
  xattrs?: Record<string, string>;
}

describe('ACI export', () => {
  let tree: string;
  let xattrsWork = false;

  before(async () => {
    tree = path.join(tmp('export'), 'rootfs');
    fs.mkdirSync(tree, { mode: 0o755 });
    const w = (rel: string, data: string, mode = 0o644) => {
      fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
      fs.writeFileSync(path.join(tree, rel), data, { mode });
      fs.chmodSync(path.join(tree, rel), mode);
    };
    w('bin/busybox', 'binary'.repeat(1000), 0o755);
    w('bin/suid', 'x', 0o4755);
    w('etc/shadow', 'secret', 0o600);
    w('empty', '');
    w(`${'a'.repeat(120)}/${'b'.repeat(120)}/${'c'.repeat(80)}`, 'deep');
    w('ünïcödé/ñ', 'u');
    fs.linkSync(path.join(tree, 'bin/busybox'), path.join(tree, 'bin/sh'));
    fs.symlinkSync('busybox', path.join(tree, 'bin/ls'));
    fs.symlinkSync('/nonexistent/' + 'z'.repeat(150), path.join(tree, 'dangling'));
    fs.mkdirSync(path.join(tree, 'emptydir'), { mode: 0o1777 });
    fs.chmodSync(path.join(tree, 'emptydir'), 0o1777);
    execFileSync('mkfifo', [path.join(tree, 'fifo')]);
    if (isRoot) {
      fs.chownSync(path.join(tree, 'etc/shadow'), 1000, 1001);
      fs.lchownSync(path.join(tree, 'bin/ls'), 7, 8);
      execFileSync('mknod', ['-m', '0666', path.join(tree, 'null'), 'c', '1', '3']);
    }
    try {
      const { kernel } = await import('../native/sys.js');
      kernel.lsetxattr(path.join(tree, 'bin/busybox'), 'user.test', Buffer.from('value'));
      xattrsWork = true;
    } catch {
      xattrsWork = false;
    }
    const t = new Date('2020-05-06T07:08:09Z');
    for (const rel of ['bin/busybox', 'etc/shadow', 'empty', 'bin']) fs.utimesSync(path.join(tree, rel), t, t);
  });

  function listTree(root: string): Map<string, Node> {
    const out = new Map<string, Node>();
    const walk = (rel: string) => {
      for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const full = path.join(root, r);
        const st = fs.lstatSync(full, { bigint: true });
        const n: Node = { type: '', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeNs / 1_000_000_000n), size: 0 };
        if (st.isDirectory()) n.type = 'dir';
        else if (st.isFile()) {
          n.type = 'file';
          n.size = Number(st.size);
          n.hash = sha256(fs.readFileSync(full));
        } else if (st.isSymbolicLink()) {
          n.type = 'symlink';
          n.link = fs.readlinkSync(full);
          n.mode = 0;
          n.mtime = 0;
        } else if (st.isFIFO()) n.type = 'fifo';
        else if (st.isCharacterDevice()) {
          n.type = 'char';
          n.rdev = String(st.rdev);
        }
        out.set(r, n);
        if (st.isDirectory()) walk(r);
      }
    };
    walk('');
    return out;
  }

  test('round trip: export, then parse back with parseAciStream', async () => {
    const out = path.join(path.dirname(tree), 'out.aci');
    await exportAci({ manifest: MANIFEST as never, rootfsDir: tree, out, overwrite: false });
    assert.deepEqual(
      fs.readdirSync(path.dirname(tree)).sort(),
      ['out.aci', 'rootfs'],
      'no temporary file is left',
    );

    // the manifest is the first entry
    const first = await tarEntries(fs.createReadStream(out));
    assert.equal(first[0].entry.path, 'manifest');
    assert.equal(first[1].entry.path, 'rootfs/');

    const parsed = parseAciStream(fs.createReadStream(out), out);
    const entries = await tarEntries(parsed.rootfsTar);
    assert.deepEqual(await parsed.manifest, MANIFEST);

    const want = listTree(tree);
    const got = new Map<string, Node>();
    const firstLink = new Map<string, string>();
    for (const { entry: e, data } of entries) {
      const p = e.path.replace(/\/$/, '');
      if (p === '.') continue;
      const n: Node = { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0 };
      if (e.type === 'file') {
        n.size = e.size;
        n.hash = sha256(data);
      } else if (e.type === 'hardlink') {
        const target = got.get(e.linkpath)!;
        assert.ok(target, `hard link target ${e.linkpath} comes first`);
        Object.assign(n, { ...target });
        firstLink.set(p, e.linkpath);
      } else if (e.type === 'symlink') {
        n.link = e.linkpath;
        n.mode = 0;
        n.mtime = 0;
      } else if (e.type === 'char') {
        const rdev = (BigInt(e.devmajor & 0xfff) << 8n) | BigInt(e.devminor & 0xff) | (BigInt(e.devminor & ~0xff) << 12n);
        n.rdev = String(rdev);
      }
      if (e.xattrs.size) n.xattrs = Object.fromEntries([...e.xattrs].map(([k, v]) => [k, v.toString()]));
      got.set(p, n);
    }
    for (const [p, n] of want) {
      const g = got.get(p);
      assert.ok(g, `${p} is in the ACI`);
      const { xattrs, ...rest } = g;
      assert.deepEqual(rest, n, p);
      if (p === 'bin/busybox' && xattrsWork) assert.deepEqual(xattrs, { 'user.test': 'value' });
    }
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    assert.ok(firstLink.has('bin/sh') || firstLink.has('bin/busybox'), 'hard links are stored as links');

    // GNU tar and python read it as well
    const gnu = execFileSync('tar', ['-tvf', out]).toString();
    assert.match(gnu, /rootfs\/aaaa/);
    const py = pythonList(out);
    assert.equal(py[0].name, 'manifest');
    if (xattrsWork) assert.equal(py.find((m) => m.name === 'rootfs/bin/busybox')!.pax['SCHILY.xattr.user.test'], 'value');
  });

  test('refuses to overwrite, wants .aci', async () => {
    const dir = path.dirname(tree);
    const out = path.join(dir, 'exists.aci');
    fs.writeFileSync(out, 'old');
    await expectError(exportAci({ manifest: MANIFEST as never, rootfsDir: tree, out, overwrite: false }), ErrorCode.Conflict, /output ACI file ".*exists.aci" exists: try --overwrite/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'old');
    await exportAci({ manifest: MANIFEST as never, rootfsDir: tree, out, overwrite: true });
    assert.notEqual(fs.readFileSync(out, 'utf8'), 'old');
    await expectError(exportAci({ manifest: MANIFEST as never, rootfsDir: tree, out: path.join(dir, 'x.tar'), overwrite: true }), ErrorCode.BadInput, /must end in .aci/);
    await expectError(exportAci({ manifest: MANIFEST as never, rootfsDir: tree, out: path.join(dir, 'no/such/dir/x.aci'), overwrite: true }), ErrorCode.NotFound, /does not exist/);
    assert.ok(!fs.readdirSync(dir).some((n) => n.endsWith('.tmp')), 'no temporary file is left');
  });
});
