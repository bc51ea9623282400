// Crashes and races: a `tspod fetch` of a multi-layer image from the real registry,
// through a proxy that holds or trickles what it serves, SIGKILLed at chosen
// moments (waiting on the manifest, mid-layer, with some layers downloaded, and at
// a spread of moments), leaves nothing a later command trusts — no image record, no
// layer directory without its info.json, `image list` as before — and the next
// fetch of the same image succeeds and verifies. Four concurrent fetches of one
// image into one store all succeed with one stored copy, each layer downloaded once.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  FIXTURES,
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
  registryLog,
  scratchLeft,
  spawnTspod,
  startProxy,
  suiteHost,
  tempDir,
  waitFor,
  type ProxyRule,
  type TspodChild,
} from './store-util.js';

const HTTP = '--insecure-options=http';

before(() => ensureFixtures());

const multi = () => readLayoutImage('multi');
const layerDigests = () => multi().manifest.layers!.map((l) => l.digest);
const isLayer = (url: string) => layerDigests().some((d) => url.endsWith(`/blobs/${d}`));

async function kill(c: TspodChild): Promise<void> {
  c.child.kill('SIGKILL');
  const r = await c.done;
  assert.equal(r.signal, 'SIGKILL', `the fetch was still running when killed\n${describeResult(r)}`);
}

/** What any command after a crash may see: complete layers only, and no half-made image. */
async function assertNothingHalfMade(dd: DataDir, imagesBefore: string[], what: string): Promise<void> {
  assert.deepEqual(incompleteLayers(dd.path), [], `${what}: every layer directory has its info.json`);
  const images = imageIds(dd.path);
  assert.ok(
    images.length === imagesBefore.length || images.length === imagesBefore.length + 1,
    `${what}: at most the one image, complete (${images.join(' ')})`,
  );
  const list = ok(await dd.tspod(['image', 'list', '--no-legend', '--full', '--fields=id']));
  assert.deepEqual(list.stdout.split('\n').filter(Boolean).map((l) => l.trim()).sort(), images, `${what}: image list shows exactly the records`);
  for (const id of images) {
    const v = await dd.tspod(['image', 'verify', id]);
    assert.equal(v.code, 0, `${what}: a stored image verifies\n${describeResult(v)}`);
  }
}

/** Fetches again (no proxy), then checks the image verifies and renders as umoci unpacks it. */
async function refetchAndCheck(dd: DataDir, ref: string, out: string): Promise<string> {
  const id = fetchedId(await dd.tspod([HTTP, 'fetch', '--full', ref]), true);
  assert.deepEqual(imageIds(dd.path), [id]);
  assert.equal(layerIds(dd.path).length, 4);
  assert.deepEqual(incompleteLayers(dd.path), []);
  ok(await dd.tspod(['image', 'verify', id]));
  ok(await dd.tspod(['image', 'render', '--rootfs-only', id, out]));
  assertSameTree(FIXTURES.multi!.refRootfs, out);
  return id;
}

describe('SIGKILL during fetch', () => {
  const host = suiteHost();
  after(() => host.run());
  let reg: Registry;
  let ref: string;
  let outs: string;

  before(async () => {
    reg = await startRegistry({ t: host });
    ref = await reg.pushFixture('multi');
    outs = tempDir(host, 'crash-renders');
  });

  async function killedFetch(t: { after(fn: () => unknown): void }, rule: ProxyRule, moment: (dd: DataDir, proxyUrlSeen: { seen(re: RegExp): Promise<void>; finished(re: RegExp): Promise<void> }) => Promise<void>, name: string) {
    const dd = makeDataDir(t);
    const proxy = await startProxy(reg.url, t, rule);
    const viaProxy = ref.replace(reg.host, proxy.host);
    const waiting = moment(dd, proxy);
    const child = spawnTspod(dd.path, [HTTP, 'fetch', viaProxy]);
    await Promise.race([
      waiting,
      child.done.then((r) => assert.fail(`the fetch ended before the moment to kill it\n${describeResult(r)}`)),
    ]);
    await kill(child);
    await proxy.close();
    await assertNothingHalfMade(dd, [], name);
    assert.deepEqual(imageIds(dd.path), [], `${name}: no image record`);
    await refetchAndCheck(dd, ref, path.join(outs, name));
    return dd;
  }

  test('while waiting for the manifest', async (t) => {
    await killedFetch(
      t,
      (req) => (/\/manifests\//.test(req.url) ? { hold: true } : undefined),
      (_dd, p) => p.seen(/\/manifests\/latest$/),
      'manifest',
    );
  });

  test('in the middle of every layer (partly unpacked in scratch)', async (t) => {
    await killedFetch(
      t,
      (req, up) => (isLayer(req.url) ? { hold: true, cutAfter: Math.floor(up.body.length / 2) } : undefined),
      async (dd, p) => {
        await p.seen(/\/blobs\//);
        // Something of a layer has been written to scratch.
        await waitFor(() => {
          try {
            const tmp = path.join(dd.path, 'cas', 'tmp');
            return fs.readdirSync(tmp).some((s) => {
              const d = path.join(tmp, s);
              return fs.readdirSync(d).some((w) => w.startsWith('layer-') && fs.readdirSync(path.join(d, w, 'rootfs')).length > 0);
            });
          } catch {
            return false; // not there yet, or changing under us
          }
        }, 'a layer being unpacked in scratch');
        assert.deepEqual(layerIds(dd.path), [], 'nothing in cas/layers yet');
      },
      'mid-layer',
    );
  });

  test('with three of four layers downloaded and the base layer half way', async (t) => {
    const [base, ...rest] = layerDigests();
    await killedFetch(
      t,
      (req, up) => (req.url.endsWith(`/blobs/${base}`) ? { hold: true, cutAfter: Math.floor(up.body.length / 2) } : undefined),
      async (_dd, p) => {
        await Promise.all([p.seen(new RegExp(`/blobs/${base}$`)), ...rest.map((d) => p.finished(new RegExp(`/blobs/${d}$`)))]);
      },
      'some-layers',
    );
  });

  test('at a spread of moments into one store, which stays consistent after each', async (t) => {
    const dd = makeDataDir(t);
    // Trickle every blob so that a fetch takes a while; kill at growing delays.
    const proxy = await startProxy(reg.url, t, (req) => (/\/blobs\//.test(req.url) ? { chunk: 32 << 10, delayMs: 10 } : undefined));
    const viaProxy = ref.replace(reg.host, proxy.host);
    let completed = 0;
    for (const delay of [30, 120, 250, 400, 600, 900, 1300, 1800, 2500, 3500]) {
      const child = spawnTspod(dd.path, [HTTP, 'fetch', viaProxy]);
      const ended = await Promise.race([child.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), delay))]);
      if (ended) {
        assert.equal(ended.code, 0, describeResult(ended));
        completed++;
      } else {
        child.child.kill('SIGKILL');
        await child.done;
      }
      await assertNothingHalfMade(dd, [], `killed after ${delay} ms`);
      if (imageIds(dd.path).length === 1) {
        // Finished before the kill: start over from an empty store for the next moment.
        ok(await dd.tspod(['image', 'rm', imageIds(dd.path)[0]!]));
        ok(await dd.tspod(['image', 'gc', '--grace-period=0s']));
        assert.deepEqual(layerIds(dd.path), []);
      }
    }
    t.diagnostic(`${completed} of 10 fetches finished before their kill`);
    await refetchAndCheck(dd, ref, path.join(outs, 'spread'));
  });

  test('a fetch killed while it holds the layer locks does not block the next one', async (t) => {
    const dd = makeDataDir(t);
    const proxy = await startProxy(reg.url, t, (req, up) => (isLayer(req.url) ? { hold: true, cutAfter: Math.floor(up.body.length / 2) } : undefined));
    const seen = proxy.seen(/\/blobs\/sha256:/);
    const first = spawnTspod(dd.path, [HTTP, 'fetch', ref.replace(reg.host, proxy.host)]);
    await seen;
    // The second fetch goes to the registry directly and has to wait for the first's layer locks.
    const second = spawnTspod(dd.path, [HTTP, 'fetch', ref]);
    const early = await Promise.race([second.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
    if (early) t.diagnostic(`the second fetch finished before the first was killed (exit ${early.code})`);
    await kill(first);
    const r = await second.done;
    fetchedId(r);
    assert.deepEqual(incompleteLayers(dd.path), []);
    ok(await dd.tspod(['image', 'verify', imageIds(dd.path)[0]!]));
  });
});

describe('concurrent fetches', () => {
  test('four fetches of one image into one store: all succeed, one image, one copy and one download of each layer', async (t) => {
    const reg = await startRegistry({ t });
    const ref = await reg.pushFixture('multi');
    const dd = makeDataDir(t);
    const children = Array.from({ length: 4 }, () => spawnTspod(dd.path, [HTTP, 'fetch', ref]));
    const results = await Promise.all(children.map((c) => c.done));
    const ids = results.map((r) => fetchedId(r));
    assert.equal(new Set(ids).size, 1, `one ID: ${ids.join(' ')}`);
    for (const r of results) assert.equal(r.stderr, '', describeResult(r));
    assert.equal(imageIds(dd.path).length, 1, 'one image record');
    assert.equal(layerIds(dd.path).length, 4, 'one directory per layer');
    assert.deepEqual(incompleteLayers(dd.path), []);
    assert.deepEqual(scratchLeft(dd.path), [], 'no scratch left behind');
    const gets = blobGets((await registryLog(reg)));
    for (const d of layerDigests()) assert.equal(gets.filter((g) => g === d).length, 1, `layer ${d} downloaded once (${gets.length} blob GETs)`);
    ok(await dd.tspod(['image', 'verify', imageIds(dd.path)[0]!]));
    const out = tempDir(t, 'concurrent-render');
    ok(await dd.tspod(['image', 'render', '--rootfs-only', ids[0]!, path.join(out, 'rootfs')]));
    assertSameTree(FIXTURES.multi!.refRootfs, path.join(out, 'rootfs'));
  });

  test('four fetches of one ACI, and of two images sharing a base layer, at once', async (t) => {
    const dd = makeDataDir(t);
    const aci = await Promise.all(Array.from({ length: 4 }, () => spawnTspod(dd.path, ['fetch', FIXTURES['aci-gz']!.source]).done));
    const aciIds = aci.map((r) => fetchedId(r));
    assert.equal(new Set(aciIds).size, 1);
    assert.equal(imageIds(dd.path).length, 1);
    assert.equal(layerIds(dd.path).length, 1);

    const both = await Promise.all(
      [FIXTURES.busybox!.source, FIXTURES.index!.source, FIXTURES.busybox!.source, FIXTURES.index!.source].map((s) => spawnTspod(dd.path, ['fetch', s]).done),
    );
    both.forEach((r) => fetchedId(r));
    assert.equal(imageIds(dd.path).length, 3);
    assert.equal(layerIds(dd.path).length, 1 + 1 + 1, 'the ACI, the busybox layer (shared), the index platform layer');
    assert.deepEqual(incompleteLayers(dd.path), []);
    assert.deepEqual(scratchLeft(dd.path), []);
  });
});
