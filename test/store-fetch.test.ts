// `tspod fetch` against the real CLI, the real docker-registry and images built by
// umoci and skopeo: every fixture renders exactly as `umoci unpack` does, from its
// local form and from a registry; rkt's ID format; one copy per image and per
// layer; the pull policies; auth (anonymous, basic from docker and containers
// auth files, bearer tokens); TLS and plain http; live progress on a terminal only.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import {
  FIXTURES,
  FIXTURE_NAMES,
  TSPOD_BIN,
  assertSameTree,
  describeResult,
  ensureFixtures,
  makeDataDir,
  readLayoutImage,
  startRegistry,
  type DataDir,
  type Registry,
} from './harness/index.js';
import {
  blobGets,
  fetchedId,
  imageIds,
  incompleteLayers,
  layerIds,
  ok,
  oneLineError,
  registryLog,
  scratchLeft,
  startFileServer,
  startProxy,
  suiteHost,
  tempDir,
} from './store-util.js';

const HTTP = '--insecure-options=http';

before(() => ensureFixtures());

function record(dir: string, id: string): { layers: string[]; manifestDigest?: string } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cas', 'images', id, 'record.json'), 'utf8')) as { layers: string[]; manifestDigest?: string };
}

/** `tspod image render --rootfs-only ID OUT` and the comparison with umoci's reference. */
async function renderAndCompare(dd: DataDir, id: string, refRootfs: string, out: string): Promise<void> {
  ok(await dd.tspod(['image', 'render', '--rootfs-only', id, out]));
  assertSameTree(refRootfs, out, { labels: ['umoci unpack', 'tspod image render'] });
}

describe('differential: tspod image render equals umoci unpack', () => {
  const host = suiteHost();
  after(() => host.run());
  let local: DataDir;
  let remote: DataDir;
  let reg: Registry;
  let renders: string;

  before(async () => {
    local = makeDataDir(host, 'diff-local');
    remote = makeDataDir(host, 'diff-remote');
    renders = tempDir(host, 'renders');
    reg = await startRegistry({ t: host });
  });

  for (const name of FIXTURE_NAMES) {
    const f = FIXTURES[name]!;
    test(`${name} from ${f.kind} (${f.description})`, async () => {
      const id = fetchedId(await local.tspod(['fetch', f.source]));
      await renderAndCompare(local, id, f.refRootfs, path.join(renders, `local-${name}`));
    });
  }

  for (const name of FIXTURE_NAMES.filter((n) => FIXTURES[n]!.registry)) {
    const f = FIXTURES[name]!;
    test(`${name} from docker:// (${f.registry!.format}${f.registry!.all ? ', every platform pushed' : ''})`, async () => {
      const ref = await reg.pushFixture(name);
      const id = fetchedId(await remote.tspod([HTTP, 'fetch', ref]));
      if (name === 'index') {
        // the amd64 entry (the second one) was chosen, not the first; the reference's /etc/platform says amd64 too
        const full = fetchedId(await remote.tspod([HTTP, 'fetch', '--full', ref]), true);
        assert.equal(full, readLayoutImage('index-amd64').descriptor.digest.replace(':', '-'), 'the index resolves to the amd64 manifest');
      }
      await renderAndCompare(remote, id, f.refRootfs, path.join(renders, `remote-${name}`));
    });
  }
});

describe('ACIs by URL', () => {
  test('an http:// URL given is fetched without --insecure-options (as rkt); the image is the same as from the file; new reuses it by URL', async (t) => {
    const srv = await startFileServer(t, { 'busybox.aci.gz': FIXTURES['aci-gz']!.file!, 'busybox.aci': FIXTURES.aci!.file! });
    const dd = makeDataDir(t);
    const plain = fetchedId(await dd.tspod(['fetch', `${srv.url}/busybox.aci`]));
    assert.deepEqual(srv.requests, ['/busybox.aci']);
    const id = fetchedId(await dd.tspod(['fetch', `${srv.url}/busybox.aci.gz`]));
    assert.equal(plain, id, 'the same image, compressed or not');
    assert.equal(fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source])), id, 'same ID as the local file');
    const out = tempDir(t, 'url-render');
    await renderAndCompare(dd, id, FIXTURES.aci!.refRootfs, path.join(out, 'rootfs'));
    const n = srv.requests.length;
    const again = await dd.tspod(['fetch', '--pull-policy=new', `${srv.url}/busybox.aci.gz`]);
    assert.equal(fetchedId(again), id);
    assert.equal(srv.requests.length, n, 'new: from the store, no request');
    assert.match(again.stderr, /using image from local store for url/);
    fetchedId(await dd.tspod(['fetch', `${srv.url}/busybox.aci.gz`]));
    assert.equal(srv.requests.length, n + 1, 'update: fetched again');
  });
});

describe('image IDs and one copy of everything', () => {
  test("fetch prints rkt's ID: 32 hex digits, --full 64; sha256 = the manifest digest, sha512 = the ACI's tar", async (t) => {
    const dd = makeDataDir(t);
    const short = fetchedId(await dd.tspod(['fetch', FIXTURES.busybox!.source]));
    const full = fetchedId(await dd.tspod(['fetch', '--full', FIXTURES.busybox!.source]), true);
    assert.equal(full, readLayoutImage('busybox').descriptor.digest.replace(':', '-'));
    assert.equal(short, full.slice(0, 'sha256-'.length + 32));

    const aciShort = fetchedId(await dd.tspod(['fetch', FIXTURES['aci-xz']!.source]));
    const aciFull = fetchedId(await dd.tspod(['fetch', '--full', FIXTURES.aci!.source]), true);
    const tarSha512 = crypto.createHash('sha512').update(fs.readFileSync(FIXTURES.aci!.file!)).digest('hex');
    assert.equal(aciFull, `sha512-${tarSha512.slice(0, 64)}`, 'the store key is the first half of the sha512 of the uncompressed tar');
    assert.ok(aciFull.startsWith(aciShort));
    assert.deepEqual(imageIds(dd.path), [full, aciFull].sort());
  });

  test('fetching twice stores one copy; two images sharing a base layer share its directory and it is downloaded once', async (t) => {
    const reg = await startRegistry({ t });
    const busybox = await reg.pushFixture('busybox');
    const multi = await reg.pushFixture('multi');
    const dd = makeDataDir(t);

    const id1 = fetchedId(await dd.tspod([HTTP, 'fetch', busybox]));
    const afterFirst = (await registryLog(reg)).length;
    const layersAfterOne = layerIds(dd.path);
    assert.equal(layersAfterOne.length, 1);
    const id2 = fetchedId(await dd.tspod([HTTP, 'fetch', busybox]));
    assert.equal(id2, id1);
    assert.deepEqual(imageIds(dd.path).length, 1, 'one image record');
    assert.deepEqual(layerIds(dd.path), layersAfterOne, 'one layer directory');
    assert.deepEqual(blobGets((await registryLog(reg)).slice(afterFirst)), [], 'the second fetch downloaded no blob');

    const before = (await registryLog(reg)).length;
    const idm = fetchedId(await dd.tspod([HTTP, 'fetch', multi]));
    const downloaded = blobGets((await registryLog(reg)).slice(before));
    const multiManifest = readLayoutImage('multi');
    const busyboxManifest = readLayoutImage('busybox');
    const shared = busyboxManifest.manifest.layers![0]!.digest;
    assert.equal(multiManifest.manifest.layers![0]!.digest, shared, 'fixture: multi is built on busybox');
    assert.ok(!downloaded.includes(shared), `the shared base layer was not downloaded again (got ${downloaded.join(' ')})`);
    const expected = [multiManifest.manifest.config!.digest, ...multiManifest.manifest.layers!.slice(1).map((l) => l.digest)].sort();
    assert.deepEqual([...downloaded].sort(), expected, 'the config and the three new layers, each once');

    const all = layerIds(dd.path);
    assert.equal(all.length, 4, `4 layer directories for 5 layers (${all.join(' ')})`);
    assert.deepEqual(incompleteLayers(dd.path), []);
    const fullB = (await dd.tspod(['image', 'list', '--full', '--no-legend', '--fields=id'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    const [rb, rm] = [fullB.find((i) => i.startsWith(id1))!, fullB.find((i) => i.startsWith(idm))!];
    assert.equal(record(dd.path, rm).layers[0], record(dd.path, rb).layers[0], "multi's first layer is busybox's layer directory");
    assert.deepEqual(scratchLeft(dd.path), []);
  });

  test('fetch by stored ID prefix and by name; unknown names are not looked up anywhere else', async (t) => {
    const reg = await startRegistry({ t });
    const ref = await reg.pushFixture('busybox');
    const dd = makeDataDir(t);
    const id = fetchedId(await dd.tspod([HTTP, 'fetch', ref]));
    const n = (await registryLog(reg)).length;
    assert.equal(fetchedId(await dd.tspod(['fetch', id.slice(0, 'sha256-'.length + 4)])), id, 'by an ID prefix');
    assert.equal(fetchedId(await dd.tspod(['fetch', id])), id, 'by the 32-digit ID');
    assert.equal(fetchedId(await dd.tspod(['fetch', `${reg.host}/busybox:latest`])), id, 'by name host/repo:tag');
    assert.equal(fetchedId(await dd.tspod(['fetch', `${reg.host}/busybox`])), id, 'by name without tag');
    assert.equal(fetchedId(await dd.tspod(['fetch', 'busybox:latest'])), id, 'by short name');
    assert.equal((await registryLog(reg)).length, n, 'none of these asked the registry');
  });
});

describe("pull policies (rkt's new, update, never)", () => {
  test('never: store only; new: the store if there, else the registry; update: always asks the registry, downloads no stored blob', async (t) => {
    const reg = await startRegistry({ t });
    const ref = await reg.pushFixture('busybox');
    const dd = makeDataDir(t);
    const count = async () => (await registryLog(reg)).length;

    oneLineError(await dd.tspod([HTTP, 'fetch', '--pull-policy=never', ref]), /not in the store and the pull policy is never: fetch it first, or use --pull-policy=new$/);
    assert.equal(await count(), 0, 'never did not ask the registry');
    assert.deepEqual(imageIds(dd.path), []);

    const id = fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=new', ref]));
    assert.ok(blobGets((await registryLog(reg))).length > 0, 'new fetched what was missing');

    let n = await count();
    const r = await dd.tspod([HTTP, 'fetch', '--pull-policy=new', ref]);
    assert.equal(fetchedId(r), id);
    assert.match(r.stderr, /using image from local store for image name/);
    assert.equal(await count(), n, 'new with the image stored did not ask the registry');

    assert.equal(fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=never', ref])), id);
    assert.equal(await count(), n, 'never did not ask the registry');

    n = await count();
    assert.equal(fetchedId(await dd.tspod([HTTP, 'fetch', ref])), id, 'update is the default');
    const upd = (await registryLog(reg)).slice(n);
    assert.ok(upd.some((q) => /\/manifests\/latest$/.test(q.uri)), 'update asked for the manifest');
    assert.deepEqual(blobGets(upd), [], 'update downloaded nothing it had');

    // A new image under the same tag: update gets it, new keeps the stored one.
    await reg.pushFixture('index', 'busybox:latest');
    const newId = fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=new', ref]));
    assert.equal(newId, id, 'new: the stored image');
    const updId = fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=update', ref]));
    assert.notEqual(updId, id, 'update: the new image');

    // Registry gone: new and never still work from the store, update cannot.
    await reg.stop();
    assert.equal(fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=never', ref])), updId);
    assert.equal(fetchedId(await dd.tspod([HTTP, 'fetch', '--pull-policy=new', ref])), updId);
    oneLineError(await dd.tspod([HTTP, 'fetch', '--pull-policy=update', ref]), /cannot reach registry 127\.0\.0\.1:\d+/);
    oneLineError(await dd.tspod(['fetch', '--pull-policy=sometimes', ref]), /invalid --pull-policy "sometimes"/);
  });
});

describe('auth, TLS and plain http', () => {
  const authFile = (dir: string, name: string, host: string, user: string, password: string, style: 'auth' | 'fields' = 'auth'): string => {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const entry = style === 'auth' ? { auth: Buffer.from(`${user}:${password}`).toString('base64') } : { username: user, password };
    fs.writeFileSync(file, JSON.stringify({ auths: { [host]: entry } }));
    return file;
  };
  /** An environment where tspod can only find the credentials we give it. */
  const isolatedEnv = (home: string, extra: Record<string, string | undefined>): Record<string, string | undefined> => ({
    HOME: home,
    TSPOD_AUTH_FILES: undefined,
    REGISTRY_AUTH_FILE: undefined,
    XDG_RUNTIME_DIR: path.join(home, 'run'),
    XDG_CONFIG_HOME: undefined,
    DOCKER_CONFIG: undefined,
    ...extra,
  });

  test('anonymous pull from a registry without auth', async (t) => {
    const reg = await startRegistry({ t });
    const ref = await reg.pushFixture('busybox');
    const dd = makeDataDir(t);
    const home = tempDir(t, 'home');
    fetchedId(await dd.tspod([HTTP, 'fetch', ref], { env: isolatedEnv(home, {}) }));
    assert.ok((await registryLog(reg)).every((q) => q.status !== 401));
  });

  test('htpasswd basic auth: credentials from a docker config.json, from $REGISTRY_AUTH_FILE, from ~/.docker/config.json', async (t) => {
    const reg = await startRegistry({ t, auth: 'htpasswd' });
    const ref = await reg.pushFixture('busybox');
    const { username, password } = reg.credentials!;
    const home = tempDir(t, 'home');

    const a = makeDataDir(t);
    const dockerCfg = authFile(home, 'elsewhere/config.json', reg.host, username, password);
    fetchedId(await a.tspod([HTTP, 'fetch', ref], { env: isolatedEnv(home, { TSPOD_AUTH_FILES: dockerCfg }) }));

    const b = makeDataDir(t);
    const authJson = authFile(home, 'containers/auth.json', reg.host, username, password, 'fields');
    fetchedId(await b.tspod([HTTP, 'fetch', ref], { env: isolatedEnv(home, { REGISTRY_AUTH_FILE: authJson }) }));

    const c = makeDataDir(t);
    authFile(home, '.docker/config.json', `http://${reg.host}`, username, password);
    fetchedId(await c.tspod([HTTP, 'fetch', ref], { env: isolatedEnv(home, {}) }));

    const authed = (await registryLog(reg)).filter((q) => /\/blobs\//.test(q.uri));
    assert.ok(authed.length >= 6 && authed.every((q) => q.status === 200), 'every blob came with the credentials');
  });

  test('bearer tokens: with credentials from an auth file, and anonymous where the token server allows it', async (t) => {
    const reg = await startRegistry({ t, auth: 'token' });
    const ref = await reg.pushFixture('busybox');
    const home = tempDir(t, 'home');
    const file = authFile(home, 'auth.json', reg.host, reg.credentials!.username, reg.credentials!.password);
    const dd = makeDataDir(t);
    const n = reg.token!.requests.length;
    fetchedId(await dd.tspod([HTTP, 'fetch', ref], { env: isolatedEnv(home, { TSPOD_AUTH_FILES: file }) }));
    const mine = reg.token!.requests.slice(n);
    assert.ok(mine.length >= 1, 'tspod asked the token server');
    assert.ok(
      mine.every((q) => q.outcome === 'granted' && q.account === reg.credentials!.username && q.scopes.includes('repository:busybox:pull')),
      JSON.stringify(mine),
    );

    const anon = await startRegistry({ t, auth: 'token', anonymousPull: true });
    const aref = await anon.pushFixture('busybox');
    const dd2 = makeDataDir(t);
    fetchedId(await dd2.tspod([HTTP, 'fetch', aref], { env: isolatedEnv(home, { TSPOD_AUTH_FILES: '' }) }));
    const anonReqs = anon.token!.requests.filter((q) => q.scopes.includes('repository:busybox:pull') && !q.scopes.some((s) => s.includes('push')));
    assert.ok(anonReqs.some((q) => q.outcome === 'granted' && q.account === undefined), JSON.stringify(anon.token!.requests));
  });

  test('TLS with a self-signed certificate needs --insecure-options=tls; plain http needs --insecure-options=http', async (t) => {
    const tls = await startRegistry({ t, tls: true });
    const tref = await tls.pushFixture('busybox');
    const dd = makeDataDir(t);
    oneLineError(await dd.tspod(['fetch', tref]), /127\.0\.0\.1:\d+.*TLS certificate is not trusted.*--insecure-options=tls/);
    assert.deepEqual(imageIds(dd.path), []);
    fetchedId(await dd.tspod(['--insecure-options=tls', 'fetch', tref]));

    const plain = await startRegistry({ t });
    const pref = await plain.pushFixture('busybox');
    const dd2 = makeDataDir(t);
    oneLineError(await dd2.tspod(['fetch', pref]), /127\.0\.0\.1:\d+.*--insecure-options=http/);
    assert.deepEqual(imageIds(dd2.path), []);
    fetchedId(await dd2.tspod(['--insecure-options=http', 'fetch', pref]));
    fetchedId(await dd2.tspod(['--insecure-options=all-fetch', 'fetch', pref]));
  });
});

describe('progress', () => {
  test('on a terminal: live per-layer lines with bytes and rate; off a terminal: no progress at all', async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) return t.skip('util-linux script is missing');
    const reg = await startRegistry({ t });
    const ref = await reg.pushFixture('multi');
    // A proxy that trickles layer blobs, so that a download lasts long enough to be drawn.
    const proxy = await startProxy(reg.url, t, (req) => (/\/blobs\//.test(req.url) ? { chunk: 16 << 10, delayMs: 15 } : undefined));
    const viaProxy = ref.replace(reg.host, proxy.host);

    const dd = makeDataDir(t);
    const cmd = [TSPOD_BIN, `--dir=${dd.path}`, HTTP, 'fetch', viaProxy].map((a) => `'${a}'`).join(' ');
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH}:${path.dirname(process.execPath)}` };
    for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
    // Asynchronously: the proxy lives in this process.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
      p.on('error', reject);
      p.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
    const text = r.stdout.replace(/\r/g, '');
    const multi = readLayoutImage('multi');
    const rows = text.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
    const live = rows.filter((l) => /^[0-9a-f]{12}: [\d.]+ (B|KiB|MiB) \/ [\d.]+ (B|KiB|MiB) +[\d.]+ (B|KiB|MiB)\/s$/.test(l));
    assert.ok(live.length > 0, `live lines with bytes, total and rate:\n${text}`);
    for (const layer of multi.manifest.layers!) {
      const label = layer.digest.slice('sha256:'.length, 'sha256:'.length + 12);
      assert.ok(rows.some((l) => l.startsWith(`${label}: done `)), `a line for layer ${label} ending in done:\n${text}`);
    }
    assert.match(text, /\x1b\[\d+A/, 'lines are redrawn in place');
    assert.match(text, /^sha256-[0-9a-f]{32}$/m, 'and the ID');

    const dd2 = makeDataDir(t);
    const quiet = await dd2.tspod([HTTP, 'fetch', viaProxy]);
    fetchedId(quiet);
    assert.equal(quiet.stderr, '', `nothing on stderr off a terminal\n${describeResult(quiet)}`);
    const aci = await dd2.tspod(['fetch', FIXTURES['aci-gz']!.source]);
    fetchedId(aci);
    assert.doesNotMatch(aci.stderr, /\x1b/);
    for (const line of aci.stderr.split('\n').filter(Boolean)) assert.match(line, /^tspod: \S.*$/, 'one-line messages only');
  });
});
