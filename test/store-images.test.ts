// rkt's image commands against the real CLI: image list (columns, --no-legend,
// --full, --fields, --sort/--order, JSON), image rm, image gc (last-used times, and
// images a prepared pod uses), image cat-manifest (the internal appc manifest and
// the originals, byte for byte as the registry serves them), image export (an ACI
// that fetch takes back with the same rootfs), image extract/render, image verify;
// and the OCI config → appc manifest conversion on a real image.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  FIXTURES,
  assertSameTree,
  ensureFixtures,
  makeDataDir,
  readLayoutImage,
  startRegistry,
  type DataDir,
  type Registry,
} from './harness/index.js';
import { fetchedId, imageIds, layerIds, ok, oneLineError, registryLog, sha256, suiteHost, tempDir } from './store-util.js';
import { POD_FILES } from '../stage1/contract/pod.js';
import { podGcRoots } from '../stage0/image-gc.js';
import { PodsDir } from '../stage0/pods.js';
import { imageGc as collectImages } from '../store/gc.js';
import { withStore } from '../store/store.js';

const HTTP = '--insecure-options=http';
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

before(() => ensureFixtures());

/** The full ID of an image whose short ID is given (from `image list --full`). */
async function fullId(dd: DataDir, short: string): Promise<string> {
  const r = ok(await dd.tspod(['image', 'list', '--full', '--no-legend', '--fields=id']));
  const hit = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(short));
  assert.equal(hit.length, 1, `one image ${short}:\n${r.stdout}`);
  return hit[0]!;
}

/** Sets an image's last-used time (what `image gc` goes by) to `ms` ago. */
function lastUsedAgo(dd: DataDir, id: string, ms: number): void {
  const file = path.join(dd.path, 'cas', 'images', id, 'lastused');
  if (!fs.existsSync(file)) fs.writeFileSync(file, '');
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

/** An image's record as the store keeps it. */
function imageRecord(dir: string, id: string): { layers: string[] } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cas', 'images', id, 'record.json'), 'utf8')) as { layers: string[] };
}

const HOUR = 3600_000;
const FULL_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})? [+-]\d{4} [A-Z]{2,5}$/;

describe('image list', () => {
  const host = suiteHost();
  after(() => host.run());
  let dd: DataDir;
  const ids: Record<string, string> = {};

  before(async () => {
    dd = makeDataDir(host, 'list');
    ids.busybox = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.busybox!.source])));
    ids.aci = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source])));
    ids.multi = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES['docker-archive']!.source])));
  });

  test("rkt's columns, tab-aligned: ID (12 hex digits) NAME SIZE IMPORT TIME LAST USED", async () => {
    const r = ok(await dd.tspod(['image', 'list']));
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 4, r.stdout);
    assert.deepEqual(lines[0]!.split(/\t+/), ['ID', 'NAME', 'SIZE', 'IMPORT TIME', 'LAST USED']);
    const rows = lines.slice(1).map((l) => l.split(/\t+/));
    // default order: import time, oldest first
    assert.deepEqual(
      rows.map((c) => c[0]),
      [ids.busybox, ids.aci, ids.multi].map((id) => id.slice(0, id.indexOf('-') + 13)),
    );
    assert.match(rows[0]![1]!, /busybox/);
    assert.equal(rows[1]![1], 'example.com/busybox-aci:1.0.0');
    assert.equal(rows[2]![1], 'example.com/multi:latest');
    for (const c of rows) {
      assert.match(c[2]!, /^\d+(\.\d)? (B|KiB|MiB)$/, 'humanized size');
      assert.match(c[3]!, /^(now|\d+ seconds? ago|1 minute ago|\d+ minutes ago)$/, 'humanized import time');
      assert.match(c[4]!, /^(now|\d+ seconds? ago|1 minute ago|\d+ minutes ago)$/, 'humanized last use');
    }
    // the columns line up on a terminal (tab stops every 8 columns, as Go's tabwriter pads)
    const starts = lines.map((l) => {
      let col = 0;
      const out: number[] = [];
      let prevTab = false;
      for (const ch of l) {
        if (ch === '\t') {
          col = (Math.floor(col / 8) + 1) * 8;
          prevTab = true;
          continue;
        }
        if (prevTab) out.push(col);
        prevTab = false;
        col++;
      }
      return out;
    });
    for (const s of starts) assert.deepEqual(s, starts[0], r.stdout);
  });

  test('--no-legend, --full, --fields, --sort, --order', async () => {
    const noLegend = ok(await dd.tspod(['image', 'list', '--no-legend']));
    assert.equal(noLegend.stdout.split('\n').filter(Boolean).length, 3);
    assert.doesNotMatch(noLegend.stdout, /IMPORT TIME/);

    const full = ok(await dd.tspod(['image', 'list', '--full', '--no-legend']));
    for (const row of full.stdout.split('\n').filter(Boolean).map((l) => l.split('\t').filter(Boolean))) {
      assert.match(row[0]!, /^(sha256|sha512)-[0-9a-f]{64}$/, 'full IDs');
      assert.match(row[2]!, /^\d+$/, 'sizes in bytes');
      assert.match(row[3]!, FULL_TIME, "rkt's full time layout");
      assert.match(row[4]!, FULL_TIME);
    }

    const fields = ok(await dd.tspod(['image', 'list', '--fields=name,id', '--full']));
    const fl = fields.stdout.split('\n').filter(Boolean).map((l) => l.split(/\t+/));
    assert.deepEqual(fl[0], ['NAME', 'ID']);
    assert.ok(fl.slice(1).every((c) => c.length === 2 && /^sha(256|512)-[0-9a-f]{64}$/.test(c[1]!)));

    const byName = ok(await dd.tspod(['image', 'list', '--no-legend', '--fields=name', '--sort=name', '--order=desc']));
    const names = byName.stdout.split('\n').filter(Boolean).map((l) => l.trim());
    assert.deepEqual(names, [...names].sort().reverse());
    const bySize = ok(await dd.tspod(['image', 'list', '--no-legend', '--full', '--fields=size,id', '--sort=size']));
    const sizes = bySize.stdout.split('\n').filter(Boolean).map((l) => Number(l.split('\t')[0]));
    assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b));

    oneLineError(await dd.tspod(['image', 'list', '--fields=id,latest']), /unknown image list field "latest"/);
  });

  test("--format=json and json-pretty: rkt's keys", async () => {
    const started = Date.now();
    const r = ok(await dd.tspod(['image', 'list', '--format=json']));
    assert.equal(r.stdout.trim().split('\n').length, 1, 'one line');
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(list.length, 3);
    for (const img of list) {
      assert.deepEqual(Object.keys(img).sort(), ['id', 'import_time', 'last_used_time', 'name', 'size']);
      assert.ok(Object.values(ids).includes(img.id as string), `full ID ${String(img.id)}`);
      assert.equal(typeof img.size, 'number');
      assert.ok(Number.isInteger(img.import_time) && (img.import_time as number) > 1.6e18 && (img.import_time as number) < started * 1e6, 'ns since the epoch');
      assert.ok(Number.isInteger(img.last_used_time) && (img.last_used_time as number) >= (img.import_time as number) - 1e9);
    }
    const pretty = ok(await dd.tspod(['image', 'list', '--format=json-pretty']));
    assert.ok(pretty.stdout.split('\n').length > 10, 'indented');
    assert.deepEqual(JSON.parse(pretty.stdout), list);
  });
});

describe('image rm, image gc', () => {
  test("rm by ID and name: rkt's lines; exit 254 when one fails; layers stay until gc", async (t) => {
    const dd = makeDataDir(t);
    const a = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.busybox!.source])));
    const b = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source])));
    const c = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES['docker-archive']!.source])));

    // The same image twice (by ID and by name) is removed once, as rkt does.
    const r = ok(await dd.tspod(['image', 'rm', a.slice(0, 12), 'example.com/busybox-aci:1.0.0', a]));
    assert.equal(r.stdout, `successfully removed aci for image: "${a}"\nsuccessfully removed aci for image: "${b}"\n`);
    assert.equal(r.stderr, 'rm: 2 image(s) successfully removed\n');
    assert.deepEqual(imageIds(dd.path), [c]);

    const bad = await dd.tspod(['image', 'rm', c.slice(0, 20), 'sha256-0123456789', a]);
    assert.equal(bad.code, 254, bad.stderr);
    assert.equal(bad.stdout, `successfully removed aci for image: "${c}"\n`);
    const errs = bad.stderr.split('\n').filter(Boolean);
    assert.equal(errs.length, 3, bad.stderr);
    assert.match(errs[0]!, /^tspod: no image with ID "sha256-0123456789" in the store/);
    assert.match(errs[1]!, new RegExp(`^tspod: no image with ID "${a}" in the store`));
    assert.equal(errs[2], 'rm: 1 image(s) successfully removed');
    assert.deepEqual(imageIds(dd.path), []);
    assert.ok(layerIds(dd.path).length > 0, "rm removes records; the layers are gc's");
    ok(await dd.tspod(['image', 'gc']));
    assert.deepEqual(layerIds(dd.path), [], 'gc removes layers no image uses');
  });

  test('gc by last-used time (--grace-period), keeping images a prepared pod uses and the layers still shared', async (t) => {
    const dd = makeDataDir(t);
    const busybox = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.busybox!.source])));
    const index = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.index!.source])));
    const aci = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source])));
    const shared = readLayoutImage('busybox').config!.rootfs!.diff_ids[0]!.replace(':', '-');
    assert.equal(readLayoutImage('index-amd64').config!.rootfs!.diff_ids[0], readLayoutImage('busybox').config!.rootfs!.diff_ids[0], 'fixture: index-amd64 is built on busybox');

    // A real prepared pod using the index image (prepare fetches nothing: pull policy new).
    const prep = await dd.tspod(['prepare', '--insecure-options=image', FIXTURES.index!.source]);
    let uuid: string | undefined;
    if (prep.code === 0) {
      uuid = prep.stdout.trim().split('\n').pop()!;
      assert.match(uuid, /^[0-9a-f-]{36}$/);
    } else {
      // Without a working prepare, a pod as stage0/image-gc.ts reads it.
      t.diagnostic(`tspod prepare failed (${prep.stderr.trim()}); simulating a prepared pod`);
      uuid = '00000000-0000-4000-8000-000000000001';
      fs.mkdirSync(path.join(dd.path, 'pods', 'prepared', uuid), { recursive: true });
      fs.writeFileSync(path.join(dd.path, 'pods', 'prepared', uuid, 'store-refs.json'), JSON.stringify({ images: [index], layers: [] }));
    }
    const all = imageIds(dd.path);

    // Everything was just used: the default 24h grace period removes nothing.
    const none = ok(await dd.tspod(['image', 'gc']));
    assert.equal(none.stdout, '');
    assert.deepEqual(imageIds(dd.path), all);

    for (const id of all) lastUsedAgo(dd, id, 2 * HOUR);
    // Using an image by fetching it from the store counts as a use.
    fetchedId(await dd.tspod(['fetch', aci.slice(0, 20)]));

    const gc = ok(await dd.tspod(['image', 'gc', '--grace-period=1h']));
    const removed = [...gc.stdout.matchAll(/^successfully removed aci for image: "(.+)"$/gm)].map((m) => m[1]);
    assert.ok(removed.includes(busybox), gc.stdout);
    assert.ok(!removed.includes(index), 'the prepared pod keeps its image');
    assert.ok(!removed.includes(aci), 'used within the grace period');
    assert.match(gc.stdout, new RegExp(`^${removed.length} image\\(s\\) successfully removed$`, 'm'));
    assert.match(gc.stderr, new RegExp(`image "${index}" not removed: used by a pod`));
    assert.ok(imageIds(dd.path).includes(index) && imageIds(dd.path).includes(aci) && !imageIds(dd.path).includes(busybox));
    assert.ok(layerIds(dd.path).includes(shared), "busybox's layer stays: the index image uses it");

    // The pod goes; then the index image is collected too, with its layers.
    if (prep.code === 0) ok(await dd.tspod(['gc', '--grace-period=0s', '--expire-prepared=0s']));
    else fs.rmSync(path.join(dd.path, 'pods', 'prepared', uuid), { recursive: true });
    assert.deepEqual(fs.readdirSync(path.join(dd.path, 'pods', 'prepared')), []);
    const gc2 = ok(await dd.tspod(['image', 'gc', '--grace-period=1h']));
    assert.match(gc2.stdout, new RegExp(`successfully removed aci for image: "${index}"`));
    assert.ok(!layerIds(dd.path).includes(shared), 'the shared layer went with its last image');
    assert.deepEqual(imageIds(dd.path).includes(aci), true);
    oneLineError(await dd.tspod(['image', 'gc', '--grace-period=soon']), /grace-period/);
  });

  test("the store's gc keeps exactly the roots its caller hands in, and reads no pod directory", async (t) => {
    const dd = makeDataDir(t);
    const busybox = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.busybox!.source])));
    const aci = await fullId(dd, fetchedId(await dd.tspod(['fetch', FIXTURES.aci!.source])));
    const busyboxLayers = imageRecord(dd.path, busybox).layers;
    // A pod directory that names both images: the store must not look at it.
    const uuid = '00000000-0000-4000-8000-000000000002';
    fs.mkdirSync(path.join(dd.path, 'pods', 'prepared', uuid), { recursive: true });
    fs.writeFileSync(path.join(dd.path, 'pods', 'prepared', uuid, POD_FILES.storeRefs), JSON.stringify({ images: [busybox, aci], layers: busyboxLayers }));
    let calls = 0;
    const report = await withStore(dd.path, (store) =>
      collectImages(store, 0, () => {
        calls++;
        return { images: new Set([aci]), layers: new Set([busyboxLayers[0]!]) };
      }),
    );
    assert.equal(calls, 1, 'the roots are asked for once, under the exclusive lock');
    assert.deepEqual(report.removedImages, [busybox], 'the image that is no root goes, whatever pods record');
    assert.deepEqual(report.keptInUse, [aci]);
    assert.deepEqual(imageIds(dd.path), [aci]);
    assert.ok(layerIds(dd.path).includes(busyboxLayers[0]!), 'a root layer stays without an image');
    for (const l of busyboxLayers.slice(1)) assert.ok(!layerIds(dd.path).includes(l), `${l} went with its image`);

    // stage0 computes the roots from that pod: its images (prepared: live) and layers.
    const roots = podGcRoots(new PodsDir(path.join(dd.path, 'pods')));
    assert.deepEqual([...roots.images].sort(), [busybox, aci].sort());
    assert.deepEqual([...roots.layers].sort(), [...busyboxLayers].sort());
  });
});

describe('cat-manifest, export, extract/render, verify, and the converted manifest', () => {
  const host = suiteHost();
  after(() => host.run());
  let reg: Registry;
  let dd: DataDir;
  let multi: string;
  let multiRef: string;
  let out: string;

  before(async () => {
    reg = await startRegistry({ t: host });
    dd = makeDataDir(host, 'ops');
    out = tempDir(host, 'ops-out');
    multiRef = await reg.pushFixture('multi');
    multi = await fullId(dd, fetchedId(await dd.tspod([HTTP, 'fetch', multiRef])));
  });

  test('the internal manifest of a converted OCI image: exec, env, workingDirectory, user/group, ports, mountPoints, labels → annotations', async () => {
    const r = ok(await dd.tspod(['image', 'cat-manifest', multi]));
    assert.match(r.stdout, /^\{\n\t"acKind"/, 'pretty-printed by default');
    const m = JSON.parse(r.stdout) as {
      acKind: string;
      acVersion: string;
      name: string;
      labels: Array<{ name: string; value: string }>;
      app: {
        exec: string[];
        user: string;
        group: string;
        environment: Array<{ name: string; value: string }>;
        workingDirectory: string;
        ports: Array<{ name: string; protocol: string; port: number }>;
        mountPoints: Array<{ name: string; path: string }>;
      };
      annotations: Array<{ name: string; value: string }>;
    };
    // The oracle: the config as umoci wrote it, read as plain JSON.
    const cfg = readLayoutImage('multi').config!.config as {
      Entrypoint: string[];
      Cmd: string[];
      Env: string[];
      WorkingDir: string;
      User: string;
      ExposedPorts: Record<string, object>;
      Volumes: Record<string, object>;
      Labels: Record<string, string>;
    };
    assert.equal(m.acKind, 'ImageManifest');
    assert.equal(m.name, `${reg.host}/multi`);
    const label = (n: string) => m.labels.find((l) => l.name === n)?.value;
    assert.equal(label('os'), 'linux');
    assert.equal(label('arch'), 'amd64');
    assert.equal(label('version'), 'latest');
    assert.deepEqual(m.app.exec, [...cfg.Entrypoint, ...cfg.Cmd]);
    assert.deepEqual(m.app.exec, ['/bin/sh', '-c', 'id; pwd']);
    assert.deepEqual(
      m.app.environment,
      cfg.Env.map((e) => ({ name: e.slice(0, e.indexOf('=')), value: e.slice(e.indexOf('=') + 1) })),
    );
    assert.ok(m.app.environment.some((e) => e.name === 'SPACED' && e.value === 'a b c'));
    assert.equal(m.app.workingDirectory, cfg.WorkingDir);
    assert.equal(m.app.user, 'user');
    assert.equal(m.app.group, 'user');
    assert.deepEqual(
      m.app.ports,
      [
        { name: '53-udp', protocol: 'udp', port: 53 },
        { name: '80-tcp', protocol: 'tcp', port: 80 },
      ],
    );
    assert.deepEqual(Object.keys(cfg.ExposedPorts).sort(), ['53/udp', '80/tcp']);
    assert.deepEqual(
      m.app.mountPoints,
      Object.keys(cfg.Volumes)
        .sort()
        .map((p) => ({ name: `volume${p.replace(/\//g, '-')}`, path: p })),
    );
    const ann = new Map(m.annotations.map((a) => [a.name, a.value]));
    for (const [k, v] of Object.entries(cfg.Labels)) assert.equal(ann.get(k), v, `label ${k} → annotation`);
    assert.equal(ann.get('appc.io/docker/repository'), 'multi');
    assert.equal(ann.get('appc.io/docker/registryurl'), reg.host);
    assert.equal(ann.get('appc.io/docker/manifesthash'), readLayoutImage('multi').descriptor.digest);

    const compact = ok(await dd.tspod(['image', 'cat-manifest', '--pretty-print=false', multi]));
    assert.equal(compact.stdout.trim().split('\n').length, 1);
    assert.deepEqual(JSON.parse(compact.stdout), m);
    // by name as well as by ID
    const byName = ok(await dd.tspod(['image', 'cat-manifest', `${reg.host}/multi:latest`]));
    assert.equal(byName.stdout, r.stdout);
  });

  test('--original=manifest|config|index: byte for byte what the registry serves', async () => {
    const served = await reg.request('/v2/multi/manifests/latest', { headers: { accept: ACCEPT } });
    assert.equal(served.status, 200);
    const man = ok(await dd.tspod(['image', 'cat-manifest', '--original=manifest', multi]));
    assert.ok(Buffer.from(man.stdout).equals(served.body), 'the manifest, byte-equal');
    assert.equal(sha256(man.stdout), multi.replace('-', ':'), 'its digest is the image ID');

    const cfgDigest = (served.json() as { config: { digest: string } }).config.digest;
    const cfgServed = await reg.request(`/v2/multi/blobs/${cfgDigest}`);
    const cfg = ok(await dd.tspod(['image', 'cat-manifest', '--original=config', multi]));
    assert.ok(Buffer.from(cfg.stdout).equals(cfgServed.body), 'the config, byte-equal');
    const pretty = ok(await dd.tspod(['image', 'cat-manifest', '--original=config', '--pretty-print', multi]));
    assert.deepEqual(JSON.parse(pretty.stdout), cfgServed.json());
    assert.ok(pretty.stdout.includes('\n\t'));

    oneLineError(await dd.tspod(['image', 'cat-manifest', '--original=index', multi]), /has no original index/);

    const indexRef = await reg.pushFixture('index');
    const idx = await fullId(dd, fetchedId(await dd.tspod([HTTP, 'fetch', indexRef])));
    const idxServed = await reg.request('/v2/index/manifests/latest', { headers: { accept: ACCEPT } });
    const idxOut = ok(await dd.tspod(['image', 'cat-manifest', '--original=index', idx]));
    assert.ok(Buffer.from(idxOut.stdout).equals(idxServed.body), 'the index, byte-equal');
    const childServed = await reg.request(`/v2/index/manifests/${idx.replace('-', ':')}`, { headers: { accept: ACCEPT } });
    assert.ok(Buffer.from(ok(await dd.tspod(['image', 'cat-manifest', '--original=manifest', idx])).stdout).equals(childServed.body));
    assert.equal((await registryLog(reg)).filter((q) => q.uri.includes('/manifests/')).length >= 3, true);
  });

  test('export writes an ACI that fetch takes back with the same rootfs', async () => {
    const aci = path.join(out, 'multi.aci');
    const r = ok(await dd.tspod(['image', 'export', multi, aci]));
    assert.equal(r.stdout, '');
    const back = fetchedId(await dd.tspod(['fetch', aci]));
    assert.match(back, /^sha512-/);
    ok(await dd.tspod(['image', 'render', '--rootfs-only', multi, path.join(out, 'render-oci')]));
    ok(await dd.tspod(['image', 'render', '--rootfs-only', back, path.join(out, 'render-aci')]));
    assertSameTree(path.join(out, 'render-oci'), path.join(out, 'render-aci'), { labels: ['the OCI image', 'its exported ACI'] });
    assertSameTree(FIXTURES.multi!.refRootfs, path.join(out, 'render-aci'), { labels: ['umoci unpack', 'the exported ACI'] });
    // The ACI keeps the internal manifest.
    const m1 = JSON.parse(ok(await dd.tspod(['image', 'cat-manifest', multi])).stdout) as { app: unknown; name: string };
    const m2 = JSON.parse(ok(await dd.tspod(['image', 'cat-manifest', back])).stdout) as { app: unknown; name: string };
    assert.deepEqual(m2.app, m1.app);
    assert.equal(m2.name, m1.name.replace(':', '-'), 'the name as an AC Identifier');

    oneLineError(await dd.tspod(['image', 'export', multi, aci]), /exists.*--overwrite/);
    ok(await dd.tspod(['image', 'export', '--overwrite', multi, aci]));
    oneLineError(await dd.tspod(['image', 'export', multi, path.join(out, 'multi.tar')]), /must end in \.aci/);
  });

  test('extract and render: manifest + rootfs/, --rootfs-only, --overwrite', async () => {
    for (const cmd of ['extract', 'render']) {
      const dir = path.join(out, `${cmd}-full`);
      const r = ok(await dd.tspod(['image', cmd, multi, dir]));
      assert.equal(r.stdout, '');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['manifest', 'rootfs']);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'manifest'), 'utf8')), JSON.parse(ok(await dd.tspod(['image', 'cat-manifest', multi])).stdout));
      assertSameTree(FIXTURES.multi!.refRootfs, path.join(dir, 'rootfs'));

      const only = path.join(out, `${cmd}-only`);
      ok(await dd.tspod(['image', cmd, '--rootfs-only', multi, only]));
      assertSameTree(FIXTURES.multi!.refRootfs, only);

      oneLineError(await dd.tspod(['image', cmd, '--rootfs-only', multi, only]), /target directory .* exists: try --overwrite/);
      fs.writeFileSync(path.join(only, 'stray'), 'x');
      ok(await dd.tspod(['image', cmd, '--rootfs-only', '--overwrite', multi, only]));
      assertSameTree(FIXTURES.multi!.refRootfs, only, { labels: ['umoci unpack', 'after --overwrite'] });
    }
  });

  test('verify: ok, then a modified unpacked layer is found (exit 254)', async (t) => {
    const own = makeDataDir(t);
    const id = await fullId(own, fetchedId(await own.tspod([HTTP, 'fetch', multiRef])));
    const good = ok(await own.tspod(['image', 'verify', id]));
    assert.equal(good.stdout, `image "${id}": ok\n`);

    const layers = (JSON.parse(fs.readFileSync(path.join(own.path, 'cas', 'images', id, 'record.json'), 'utf8')) as { layers: string[] }).layers;
    const motd = layers.map((l) => path.join(own.path, 'cas', 'layers', l, 'rootfs', 'etc', 'motd')).find((p) => fs.existsSync(p))!;
    assert.ok(motd, 'a layer with etc/motd');
    fs.appendFileSync(motd, 'tampered\n');
    const bad = await own.tspod(['image', 'verify', id]);
    assert.equal(bad.code, 254, bad.stderr);
    const layer = path.basename(path.dirname(path.dirname(path.dirname(motd))));
    assert.match(bad.stderr, new RegExp(`^tspod: image "${id}": layer ${layer} was modified after it was unpacked`));
    assert.equal(bad.stderr.split('\n').filter(Boolean).length, 1, bad.stderr);

    // A changed mode alone counts too; the untouched image next to it still verifies.
    fs.writeFileSync(motd, fs.readFileSync(motd, 'utf8').replace('tampered\n', ''));
    const again = await own.tspod(['image', 'verify', id]);
    assert.equal(again.code, 0, `restoring the content restores the hash\n${again.stderr}`);
    const busybox = layers.map((l) => path.join(own.path, 'cas', 'layers', l, 'rootfs', 'bin', 'busybox')).find((p) => fs.existsSync(p))!;
    fs.chmodSync(busybox, 0o777);
    const modeOnly = await own.tspod(['image', 'verify', id]);
    assert.equal(modeOnly.code, 254, 'a mode change is found');
  });
});
