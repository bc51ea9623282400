// Bad input to `tspod fetch` (and to the commands that take an image ID): every
// case gets exactly one line on stderr naming what was wrong, exit 254, and leaves
// the store byte for byte as it was (lock files aside). The registry is the real
// docker-registry; a Node proxy on 127.0.0.1 tampers with what it serves, a Node
// server refuses everything; the malicious layers and broken ACIs are written by
// python3's tarfile. A canary directory outside the store checks that no layer
// entry escapes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  FIXTURES,
  OCI_LAYOUT,
  ensureFixtures,
  freePort,
  makeDataDir,
  readLayoutImage,
  skopeo,
  startRegistry,
  type DataDir,
  type Registry,
} from './harness/index.js';
import {
  aciManifest,
  assertUnchanged,
  fetchedId,
  flipByte,
  imageIds,
  makeAci,
  makeCanary,
  makeLayout,
  oneLineError,
  python,
  sha256,
  snapshot,
  startFileServer,
  startProxy,
  startRefusingServer,
  suiteHost,
  tempDir,
  type Proxy,
  type ProxyRule,
  type RunResult,
  type TarEntry,
} from './store-util.js';

const HTTP = '--insecure-options=http';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

before(() => ensureFixtures());

describe('bad input leaves one line, exit 254 and an unchanged store', () => {
  const host = suiteHost();
  after(() => host.run());
  let dd: DataDir;
  let reg: Registry;
  let busyboxRef: string;

  before(async () => {
    dd = makeDataDir(host, 'bad-input');
    reg = await startRegistry({ t: host });
    busyboxRef = await reg.pushFixture('busybox');
    // Something already in the store, so that "unchanged" means more than "empty".
    fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source]));
  });

  /** Runs tspod, expects the one-line failure, and checks the store did not change. */
  async function refused(args: string[], re: RegExp, env?: Record<string, string | undefined>): Promise<string> {
    const before = snapshot(dd.path);
    const r = await dd.tspod(args, env ? { env } : {});
    const line = oneLineError(r, re);
    if (process.env.SHOW_LINES) console.log(`LINE ${line}`);
    assertUnchanged(before, dd.path, args.join(' '));
    return line;
  }

  /** The busybox image through a proxy applying `rule`. */
  async function viaProxy(t: { after(fn: () => unknown): void }, rule: ProxyRule): Promise<{ proxy: Proxy; ref: string }> {
    const proxy = await startProxy(reg.url, t, rule);
    return { proxy, ref: busyboxRef.replace(reg.host, proxy.host) };
  }

  const busybox = () => readLayoutImage('busybox');
  const isManifest = (url: string) => /\/manifests\//.test(url);
  const isBlob = (digest: string) => (url: string) => url.endsWith(`/blobs/${digest}`);

  // ---------------------------------------------------------------- registries that fail

  test('an unreachable registry (a closed port)', async () => {
    const port = await freePort();
    await refused([HTTP, 'fetch', `docker://127.0.0.1:${port}/busybox:latest`], new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port}.*connection refused`));
    await refused(['fetch', `docker://127.0.0.1:${port}/busybox:latest`], new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port}: connection refused`));
  });

  test('a registry that answers 500 to everything', async (t) => {
    const srv = await startRefusingServer(t, 500);
    await refused([HTTP, 'fetch', `docker://${srv.host}/busybox:latest`], new RegExp(`registry ${srv.host.replace(/\./g, '\\.')} answered 500 Internal Server Error to GET /v2/`));
  });

  test('401: no credentials, wrong credentials (basic and token)', async (t) => {
    const basic = await startRegistry({ t, auth: 'htpasswd' });
    const ref = await basic.pushFixture('busybox');
    const home = tempDir(t, 'home');
    const env = (files: string) => ({ TSPOD_AUTH_FILES: files, HOME: home });
    await refused([HTTP, 'fetch', ref], new RegExp(`registry ${basic.host.replace(/\./g, '\\.')} requires a login to pull ${basic.host.replace(/\./g, '\\.')}/busybox .*: log in with`), env(''));
    const wrong = path.join(home, 'wrong.json');
    fs.writeFileSync(wrong, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('tspod:not-the-password').toString('base64') } } }));
    await refused([HTTP, 'fetch', ref], /denied user "tspod" \(from .*wrong\.json\)|refused the credentials of user "tspod"/, env(wrong));

    const token = await startRegistry({ t, auth: 'token' });
    const tref = await token.pushFixture('busybox');
    await refused([HTTP, 'fetch', tref], /requires a login to pull 127\.0\.0\.1:\d+\/busybox/, env(''));
    const wrongT = path.join(home, 'wrong-token.json');
    fs.writeFileSync(wrongT, JSON.stringify({ auths: { [token.host]: { username: 'tspod', password: 'nope' } } }));
    const line = await refused([HTTP, 'fetch', tref], /refused the credentials of user "tspod" \(from .*wrong-token\.json\)/, env(wrongT));
    assert.doesNotMatch(line, /nope/, 'the password is never shown');
  });

  // ---------------------------------------------------------------- tampered content

  test('a manifest whose bytes do not match: the registry digest header, and a pinned digest', async (t) => {
    const { ref } = await viaProxy(t, (req, up) => (isManifest(req.url) ? { body: Buffer.from(up.body.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2')) } : undefined));
    await refused([HTTP, 'fetch', ref], /manifest of .*busybox:latest: the registry says its digest is sha256:[0-9a-f]{64}, but the content has sha256:[0-9a-f]{64}/);

    const digest = busybox().descriptor.digest;
    const { ref: ref2 } = await viaProxy(t, (req, up) =>
      isManifest(req.url) ? { body: Buffer.from(up.body.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2')), headers: { 'docker-content-digest': '' } } : undefined,
    );
    const pinned = ref2.replace(':latest', `@${digest}`);
    await refused([HTTP, 'fetch', pinned], new RegExp(`content has digest sha256:[0-9a-f]{64}, expected ${digest}`));
  });

  test('a config with the wrong digest, and with the wrong size', async (t) => {
    const cfg = busybox().manifest.config!.digest;
    const { ref } = await viaProxy(t, (req, up) => (isBlob(cfg)(req.url) ? { body: flipByte(up.body) } : undefined));
    await refused([HTTP, 'fetch', ref], new RegExp(`config of .*: content has digest sha256:[0-9a-f]{64}, expected ${cfg}`));
    const { ref: ref2 } = await viaProxy(t, (req, up) => (isBlob(cfg)(req.url) ? { body: Buffer.concat([up.body, Buffer.from(' ')]) } : undefined));
    await refused([HTTP, 'fetch', ref2], new RegExp(`config of .*: more data than the \\d+ bytes its descriptor declares`));
  });

  test('a layer with the wrong digest, the wrong size, and a truncated download', async (t) => {
    const layer = busybox().manifest.layers![0]!;
    const { ref } = await viaProxy(t, (req, up) => (isBlob(layer.digest)(req.url) ? { body: flipByte(up.body) } : undefined));
    await refused([HTTP, 'fetch', ref], new RegExp(`layer ${layer.digest} of .*: content has digest sha256:[0-9a-f]{64}, expected ${layer.digest}`));

    const { ref: longer } = await viaProxy(t, (req, up) => (isBlob(layer.digest)(req.url) ? { body: Buffer.concat([up.body, Buffer.alloc(100)]) } : undefined));
    await refused([HTTP, 'fetch', longer], new RegExp(`layer ${layer.digest} of .*: more data than the ${layer.size} bytes its descriptor declares`));

    const { ref: shorter } = await viaProxy(t, (req, up) => (isBlob(layer.digest)(req.url) ? { body: up.body.subarray(0, 1000) } : undefined));
    await refused([HTTP, 'fetch', shorter], new RegExp(`layer ${layer.digest} of .*: got 1000 bytes, expected ${layer.size}`));

    const { ref: cut } = await viaProxy(t, (req) => (isBlob(layer.digest)(req.url) ? { cutAfter: Math.floor(layer.size / 2) } : undefined));
    await refused([HTTP, 'fetch', cut], new RegExp(`${layer.digest}.*(truncated|connection (reset|closed)|premature|ended before)`, 'i'));
  });

  test('one bad layer of four fails the fetch at once, while another layer is still downloading', async (t) => {
    const multiRef = await reg.pushFixture('multi');
    const layers = readLayoutImage('multi').manifest.layers!;
    const [base, last] = [layers[0]!, layers[layers.length - 1]!];
    const proxy = await startProxy(reg.url, t, (req, up) => {
      if (isBlob(base.digest)(req.url)) return { hold: true, cutAfter: 1000 }; // never finishes by itself
      if (isBlob(last.digest)(req.url)) return { body: flipByte(up.body) };
      return undefined;
    });
    await refused([HTTP, 'fetch', multiRef.replace(reg.host, proxy.host)], new RegExp(`layer ${last.digest} of .*: content has digest sha256:[0-9a-f]{64}, expected ${last.digest}`));
  });

  test('an unknown media type, and malformed JSON (with a consistent digest header)', async (t) => {
    const serve = (body: Buffer, contentType: string) => ({ body, headers: { 'content-type': contentType, 'docker-content-digest': sha256(body) } });
    const { ref } = await viaProxy(t, (req, up) => {
      if (!isManifest(req.url)) return undefined;
      const doc = JSON.parse(up.body.toString('utf8')) as Record<string, unknown>;
      doc.mediaType = 'application/vnd.example.unknown.v1+json';
      return serve(Buffer.from(JSON.stringify(doc)), 'application/vnd.example.unknown.v1+json');
    });
    await refused([HTTP, 'fetch', ref], /media type "application\/vnd\.example\.unknown\.v1\+json"/);

    const { ref: ref2 } = await viaProxy(t, (req, up) => {
      if (!isManifest(req.url)) return undefined;
      const doc = JSON.parse(up.body.toString('utf8')) as { layers: Array<{ mediaType: string }> };
      doc.layers[0]!.mediaType = 'application/vnd.example.layer.v1.tar+lz4';
      return serve(Buffer.from(JSON.stringify(doc)), OCI_MANIFEST);
    });
    await refused([HTTP, 'fetch', ref2], /unknown layer media type "application\/vnd\.example\.layer\.v1\.tar\+lz4"/);

    const { ref: ref3 } = await viaProxy(t, (req) => (isManifest(req.url) ? serve(Buffer.from('{"schemaVersion": 2, "mediaType": '), OCI_MANIFEST) : undefined));
    await refused([HTTP, 'fetch', ref3], /manifest of .*: not valid JSON/);
  });

  test('an index with no entry for this platform; a single image for another platform', async (t) => {
    const layout = tempDir(t, 'arm-only');
    await skopeo(['copy', `oci:${OCI_LAYOUT}:index-arm64`, `oci:${layout}:arm64`]);
    python(
      `
import hashlib, json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, 'index.json')))
m = idx['manifests'][0]
blob = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [
  {'mediaType': m['mediaType'], 'digest': m['digest'], 'size': m['size'], 'platform': {'architecture': 'arm64', 'os': 'linux', 'variant': 'v8'}},
  {'mediaType': m['mediaType'], 'digest': m['digest'], 'size': m['size'], 'platform': {'architecture': 'amd64', 'os': 'windows'}}]}).encode()
h = hashlib.sha256(blob).hexdigest()
open(os.path.join(d, 'blobs', 'sha256', h), 'wb').write(blob)
idx['manifests'].append({'mediaType': 'application/vnd.oci.image.index.v1+json', 'digest': 'sha256:' + h, 'size': len(blob),
  'annotations': {'org.opencontainers.image.ref.name': 'armonly'}})
json.dump(idx, open(os.path.join(d, 'index.json'), 'w'))
`,
      [layout],
    );
    const armonly = await reg.push(`oci:${layout}:armonly`, 'armonly:latest', { all: true });
    await refused([HTTP, 'fetch', armonly], /armonly:latest has no image for linux\/amd64/);

    const single = await reg.push(`oci:${OCI_LAYOUT}:index-arm64`, 'arm64:latest');
    await refused([HTTP, 'fetch', single], /bad arch "arm64": .*arm64:latest is an image for linux\/arm64, this host is linux\/amd64/);
    await refused(['fetch', `oci:${OCI_LAYOUT}:index-arm64`], /bad arch "arm64"/);
  });

  // ---------------------------------------------------------------- local files

  test('an ACI without a manifest, without rootfs/, with a broken manifest, not an archive at all', async (t) => {
    const dir = tempDir(t, 'bad-aci');
    const noManifest = path.join(dir, 'no-manifest.aci');
    makeAci(noManifest, [{ name: 'rootfs', type: 'dir' }, { name: 'rootfs/hello', data: 'hi\n' }]);
    await refused(['fetch', noManifest], /no-manifest\.aci has no manifest/);

    const noRootfs = path.join(dir, 'no-rootfs.aci');
    makeAci(noRootfs, [{ name: 'manifest', data: aciManifest('example.com/no-rootfs') }]);
    await refused(['fetch', noRootfs], /no-rootfs\.aci has no rootfs\/ directory/);

    const badJson = path.join(dir, 'bad-json.aci');
    makeAci(badJson, [{ name: 'manifest', data: '{"acKind": "ImageManifest",' }, { name: 'rootfs', type: 'dir' }]);
    await refused(['fetch', badJson], /bad-json\.aci: its manifest is not valid JSON/);

    const notTar = path.join(dir, 'random.aci');
    fs.writeFileSync(notTar, crypto.randomBytes(4096));
    await refused(['fetch', notTar], /random\.aci.*not a valid tar archive|random\.aci/);

    await refused(['fetch', path.join(dir, 'missing.aci')], /ACI file ".*missing\.aci" does not exist/);
  });

  test('an ACI URL that cannot be reached, that is not there, that is not an ACI', async (t) => {
    const port = await freePort();
    await refused([HTTP, 'fetch', `http://127.0.0.1:${port}/busybox.aci`], new RegExp(`unable to fetch image from http://127\\.0\\.0\\.1:${port}/busybox\\.aci: connection refused`));
    const dir = tempDir(t, 'url-aci');
    fs.writeFileSync(path.join(dir, 'junk.aci'), 'this is not an ACI\n');
    const srv = await startFileServer(t, { 'junk.aci': path.join(dir, 'junk.aci') });
    await refused([HTTP, 'fetch', `${srv.url}/missing.aci`], /unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/missing\.aci: HTTP 404/);
    await refused([HTTP, 'fetch', `${srv.url}/junk.aci`], /junk\.aci.*not a valid tar archive/);
  });

  test('an ACI URL whose server stalls: no response headers (30 s), or a body that stops (60 s)', async (t) => {
    // tspod's own timeouts (store/sources/http.ts), not a test knob: both fetches run at once.
    const start = fs.readFileSync(FIXTURES.aci!.source).subarray(0, 4096);
    const server = http.createServer((req, res) => {
      if (req.url === '/stall.aci') {
        res.writeHead(200, { 'content-length': String(start.length * 64) });
        res.write(start); // the ACI's beginning, and nothing more
      } // /hang.aci: no answer at all
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const before = snapshot(dd.path);
    const [hang, stall] = await Promise.all([dd.tspod([HTTP, 'fetch', `${base}/hang.aci`]), dd.tspod([HTTP, 'fetch', `${base}/stall.aci`])]);
    oneLineError(hang, /^tspod: unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/hang\.aci: no response within 30 s$/);
    oneLineError(stall, /^tspod: unable to fetch image from http:\/\/127\.0\.0\.1:\d+\/stall\.aci: the download of the ACI stalled: nothing received for 60 s$/);
    assertUnchanged(before, dd.path, 'the stalled fetches');
  });

  test('unknown, ambiguous and too-short image ID prefixes; unknown names', async (t) => {
    // Two ACIs whose IDs share their first two hex digits (found by trying annotations).
    const dir = tempDir(t, 'twins');
    const out = python(
      `
import hashlib, io, json, sys, tarfile
def aci(i):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        m = json.dumps({'acKind': 'ImageManifest', 'acVersion': '0.8.11', 'name': 'example.com/twin%d' % i,
                        'labels': [{'name': 'os', 'value': 'linux'}, {'name': 'arch', 'value': 'amd64'}]}).encode()
        ti = tarfile.TarInfo('manifest'); ti.size = len(m); ti.mtime = 1700000000; tf.addfile(ti, io.BytesIO(m))
        ti = tarfile.TarInfo('rootfs'); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000; tf.addfile(ti)
    return buf.getvalue()
seen = {}
i = 0
while True:
    b = aci(i)
    p = hashlib.sha512(b).hexdigest()[:2]
    if p in seen:
        j = seen[p]
        open(sys.argv[1] + '/a.aci', 'wb').write(aci(j))
        open(sys.argv[1] + '/b.aci', 'wb').write(b)
        print(p)
        break
    seen[p] = i
    i += 1
`,
      [dir],
    );
    const prefix = out.trim();
    // The store's other image must not share the prefix, or the twins would be three.
    fetchedId(await dd.tspod(['fetch', path.join(dir, 'a.aci')]));
    fetchedId(await dd.tspod(['fetch', path.join(dir, 'b.aci')]));
    const ids = imageIds(dd.path);
    const twins = ids.filter((i) => i.startsWith(`sha512-${prefix}`));
    assert.ok(twins.length >= 2, `two images start with sha512-${prefix}: ${ids.join(' ')}`);

    await refused(['fetch', `sha512-${prefix}`], new RegExp(`ambiguous image ID "sha512-${prefix}": ${twins.length} images match`));
    await refused(['image', 'rm', `sha512-${prefix}`], /ambiguous image ID/);
    await refused(['image', 'cat-manifest', `sha512-${prefix}`], /ambiguous image ID/);
    await refused(['fetch', 'sha512-a'], /image ID "sha512-a" too short/);
    await refused(['image', 'render', 'sha256-5', path.join(dir, 'r')], /image ID "sha256-5" too short/);
    const unknown = ['0', '1', '2', '3'].map((d) => `sha256-${d}${d}${d}${d}`).find((p) => !ids.some((i) => i.startsWith(p)))!;
    await refused(['fetch', unknown], new RegExp(`no image with ID "${unknown}" in the store`));
    await refused(['image', 'verify', unknown], new RegExp(`no image with ID "${unknown}"`));
    await refused(['fetch', 'example.com/nothing-here:1.0'], /image "example\.com\/nothing-here:1\.0" is not in the store/);
    await refused(['fetch', 'nothing-here'], /image "nothing-here" is not in the store/);
  });

  // ---------------------------------------------------------------- layers that try to escape

  describe('malicious layers are refused and never write outside (README: the image is refused, nothing stored)', () => {
    const cases: Array<{ name: string; layers: (canary: string) => TarEntry[][]; entry: RegExp }> = [
      {
        name: 'a ../ path',
        layers: (c) => [[{ name: 'etc', type: 'dir' }, { name: `${'../'.repeat(20)}${c.slice(1)}/pwned`, data: 'pwned\n' }]],
        entry: /\.\.\//,
      },
      {
        name: 'an absolute path',
        layers: (c) => [[{ name: `${c}/pwned`, data: 'pwned\n' }]],
        entry: /pwned/,
      },
      {
        name: 'a path through a symlink made earlier in the layer',
        layers: (c) => [[{ name: 'escape', type: 'symlink', link: c }, { name: 'escape/pwned', data: 'pwned\n' }, { name: 'escape/canary', data: 'overwritten\n' }]],
        entry: /escape\/(pwned|canary)/,
      },
      {
        name: 'a hardlink to a file outside (absolute), then written through',
        layers: (c) => [[{ name: 'hl', type: 'hardlink', link: `${c}/canary` }, { name: 'hl', data: 'overwritten\n', mode: 0o777 }]],
        entry: /hl/,
      },
      {
        name: 'a hardlink to a file outside (../)',
        layers: (c) => [[{ name: 'd', type: 'dir' }, { name: 'd/hl', type: 'hardlink', link: `${'../'.repeat(20)}${c.slice(1)}/canary` }]],
        entry: /d\/hl/,
      },
      {
        name: 'a hardlink through a symlink',
        layers: (c) => [[{ name: 'sl', type: 'symlink', link: c }, { name: 'hl', type: 'hardlink', link: 'sl/canary' }, { name: 'hl', data: 'overwritten\n' }]],
        entry: /hl|sl\/canary/,
      },
      {
        name: 'a path through a symlink made in a lower layer',
        layers: (c) => [[{ name: 'lower', type: 'symlink', link: c }], [{ name: 'lower/pwned', data: 'pwned\n' }, { name: 'lower/canary', data: 'overwritten\n' }]],
        entry: /./,
      },
      {
        name: 'a hardlink through a symlink made in a lower layer',
        layers: (c) => [[{ name: 'lower', type: 'symlink', link: c }], [{ name: 'hl', type: 'hardlink', link: 'lower/canary' }, { name: 'hl', data: 'overwritten\n' }]],
        entry: /hl|lower\/canary/,
      },
    ];

    for (const c of cases) {
      test(c.name, async (t) => {
        const canary = makeCanary(t);
        const layout = tempDir(t, 'evil');
        makeLayout(layout, 'evil', c.layers(canary.dir));
        const before = snapshot(dd.path);
        const r = await dd.tspod(['fetch', `oci:${layout}:evil`]);
        canary.check(c.name);
        if (c.name.includes('lower layer') && r.code === 0) {
          // Each layer is unpacked into its own directory, so a lower layer's symlink
          // is never followed: the image is harmless. Rendering it must not follow it either.
          const id = fetchedId(r);
          const out = path.join(tempDir(t, 'render'), 'rootfs');
          const rr = await dd.tspod(['image', 'render', '--rootfs-only', id, out]);
          canary.check(`${c.name} (render)`);
          assert.equal(rr.code, 0, rr.stderr);
          const rm = await dd.tspod(['image', 'rm', id]);
          assert.equal(rm.code, 0, rm.stderr);
          canary.check(`${c.name} (rm)`);
          return;
        }
        const line = oneLineError(r, c.entry);
        if (process.env.SHOW_LINES) console.log(`LINE ${line}`);
        assert.match(line, /outside|unsafe|symlink|symbolic link|hard ?link|absolute|\.\./i, 'the line says why');
        assertUnchanged(before, dd.path, c.name);
      });
    }

    test('the same through a registry (pushed by skopeo)', async (t) => {
      const canary = makeCanary(t);
      const layout = tempDir(t, 'evil-reg');
      makeLayout(layout, 'evil', [[{ name: 'escape', type: 'symlink', link: canary.dir }, { name: 'escape/pwned', data: 'pwned\n' }]]);
      const ref = await reg.push(`oci:${layout}:evil`, 'evil:latest');
      await refused([HTTP, 'fetch', ref], /escape\/pwned/);
      canary.check('docker://');
    });
  });

  test('after all of it: the store still holds exactly what it held, and it verifies', async () => {
    const r = await dd.tspod(['image', 'list', '--no-legend', '--fields=name']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /example\.com\/busybox-aci/);
    for (const id of imageIds(dd.path)) {
      const v = await dd.tspod(['image', 'verify', id]);
      assert.equal(v.code, 0, v.stderr);
    }
  });
});

export type { RunResult };
