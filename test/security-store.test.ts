// Security issue 6, items 3, 5 and two of 8: each test performs the attack and
// asserts that it fails.
//   - the store is private: a setuid-root busybox that came with an image cannot
//     be reached, let alone run, by another local user (`nobody`), in a new data
//     directory and in one made with the old 0755 modes (fixed by the next command);
//   - a layer with a hardlink into a lower layer renders each image's own content
//     (chain-keyed), whichever image was fetched first; verify and gc still work;
//   - an image listing one layer twice fetches, runs, and renders as umoci unpacks it;
//   - an ACI that names itself `docker.io/library/busybox` never answers docker://busybox.
// Every image is built with GNU tar and umoci (and, for the repeated layer, a
// hand-edited manifest), never with tspod's code.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { assertSameTree, describeResult, ensureFixtures, fixture, makeDataDir, readLayoutImage, runTspod, startRegistry, TMP_TEST_PREFIX, type DataDir, type RunResult } from './harness/index.js';
import { fetchedId, incompleteLayers, layerIds, ok, oneLineError, scratchLeft, suiteHost, tempDir } from './store-util.js';

const IS_ROOT = process.getuid?.() === 0;
const SKIP = IS_ROOT ? false : 'needs root';
const BUSYBOX_BIN = '/bin/busybox';
const NOBODY = 65534;
const HTTP = '--insecure-options=http';

before(() => ensureFixtures());

// ---------------------------------------------------------------- building images

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** GNU tar of `names` (relative to `dir`), owned by 0:0, fixed times, in the given order. */
function gnuTar(out: string, dir: string, names: string[]): void {
  run('tar', ['--create', `--file=${out}`, `--directory=${dir}`, '--numeric-owner', '--owner=0', '--group=0', '--mtime=@1700000000', '--format=gnu', '--no-recursion', ...names]);
}

/** Every path under dir (relative), parents first, for gnuTar. */
function walk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** umoci: a new image `tag` in `layout` (made if missing) with these uncompressed layer tars. */
function umociImage(layout: string, tag: string, tars: string[]): void {
  if (!fs.existsSync(path.join(layout, 'index.json'))) run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:${tag}`]);
  for (const t of tars) run('umoci', ['raw', 'add-layer', '--image', `${layout}:${tag}`, t]);
  run('umoci', ['config', '--image', `${layout}:${tag}`, '--os', 'linux', '--architecture', 'amd64', '--config.cmd', '/bin/true']);
}

/** umoci's reference unpack of an image: its rootfs. */
function umociUnpack(layout: string, tag: string, out: string): string {
  run('umoci', ['unpack', '--image', `${layout}:${tag}`, out]);
  return path.join(out, 'rootfs');
}

/** A busybox tree in `dir`: bin/busybox (mode `mode`) and applet symlinks. */
function busyboxTree(dir: string, mode = 0o755): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.copyFileSync(BUSYBOX_BIN, path.join(dir, 'bin/busybox'));
  fs.chownSync(path.join(dir, 'bin/busybox'), 0, 0);
  fs.chmodSync(path.join(dir, 'bin/busybox'), mode);
  for (const a of ['sh', 'true', 'cat', 'id', 'ls']) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
}

function imageRecord(dir: string, id: string): { layers: string[]; configDigest?: string } {
  const full = fs.readdirSync(path.join(dir, 'cas', 'images')).find((n) => n.startsWith(id));
  assert.ok(full, `image ${id} in the store`);
  return JSON.parse(fs.readFileSync(path.join(dir, 'cas', 'images', full, 'record.json'), 'utf8')) as { layers: string[]; configDigest?: string };
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o7777;
}

// ---------------------------------------------------------------- acting as nobody

interface Probe {
  /** What exec of the path as nobody did: its stdout, or the error. */
  exec: RunResult & { ok: boolean };
  /** path → 'ok' or the errno code of stat/open as nobody. */
  access: Record<string, string>;
}

/**
 * As `nobody` (runuser: every credential dropped before the exec, so the exec's
 * own path lookup is nobody's too), tries to run `binary id -u`, and to open
 * each of `paths`.
 */
function asNobody(binary: string, paths: string[]): Probe {
  const argv = ['-u', 'nobody', '--', binary, 'id', '-u'];
  const e = spawnSync('runuser', argv, { encoding: 'utf8', cwd: '/' });
  const exec = {
    ok: e.status === 0,
    code: e.status ?? -1,
    signal: e.signal,
    stdout: e.stdout,
    stderr: e.stderr,
    timedOut: false,
    argv: ['runuser', ...argv],
  };
  const script = `
const fs = require('fs');
const out = { uid: process.getuid(), euid: process.geteuid() };
for (const p of JSON.parse(process.argv[1])) {
  try { fs.closeSync(fs.openSync(p, 'r')); out[p] = 'ok'; } catch (e) { out[p] = e.code; }
}
console.log(JSON.stringify(out));`;
  const a = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script, JSON.stringify(paths)], { encoding: 'utf8', cwd: '/' });
  assert.equal(a.status, 0, `the access probe ran as nobody: ${a.stderr}`);
  const access = JSON.parse(a.stdout) as Record<string, string | number>;
  assert.equal(access.uid, NOBODY, 'the probe is nobody');
  assert.equal(access.euid, NOBODY);
  delete access.uid;
  delete access.euid;
  return { exec, access: access as Record<string, string> };
}

function assertDenied(p: Probe, what: string): void {
  assert.equal(p.exec.ok, false, `${what}: nobody ran the setuid binary from the store\n${describeResult(p.exec)}`);
  assert.match(p.exec.stderr, /failed to execute .*: Permission denied/, `${what}: exec fails with EACCES\n${describeResult(p.exec)}`);
  assert.equal(p.exec.stdout, '', `${what}: nothing ran`);
  for (const [file, code] of Object.entries(p.access)) assert.equal(code, 'EACCES', `${what}: nobody's open of ${file}`);
}

/** The directories an old tspod (0.1.0) made 0755 (and pods/* 0750): what an old store looks like. */
function loosen(dir: string): void {
  const dirs = [dir];
  for (const sub of ['cas', 'pods']) {
    const p = path.join(dir, sub);
    if (!fs.existsSync(p)) continue;
    dirs.push(p);
    for (const rel of fs.readdirSync(p, { recursive: true }) as string[]) {
      const q = path.join(p, rel);
      if (rel.split('/').includes('rootfs')) continue; // image content keeps its modes
      if (fs.lstatSync(q).isDirectory()) dirs.push(q);
    }
  }
  for (const d of dirs) fs.chmodSync(d, 0o755);
}

/** Every directory tspod manages under the data dir (not image content), with its mode. */
function managedModes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': mode(dir).toString(8) };
  for (const sub of ['cas', 'pods']) {
    const p = path.join(dir, sub);
    if (!fs.existsSync(p)) continue;
    out[sub] = mode(p).toString(8);
    for (const name of fs.readdirSync(p)) {
      const q = path.join(p, name);
      if (fs.lstatSync(q).isDirectory()) out[`${sub}/${name}`] = mode(q).toString(8);
    }
  }
  for (const kind of ['layers', 'images']) {
    const p = path.join(dir, 'cas', kind);
    for (const name of fs.existsSync(p) ? fs.readdirSync(p) : []) out[`cas/${kind}/${name}`] = mode(path.join(p, name)).toString(8);
  }
  return out;
}

function assertPrivate(dir: string, what: string): void {
  const loose = Object.entries(managedModes(dir)).filter(([, m]) => (parseInt(m, 8) & 0o077) !== 0);
  assert.deepEqual(loose, [], `${what}: directories under the data dir accessible to other users`);
}

// ---------------------------------------------------------------- 1. the store is private

describe('the store is readable by root only', { skip: SKIP }, () => {
  const host = suiteHost();
  after(() => host.run());
  let layout: string;

  before(() => {
    layout = path.join(tempDir(host, 'suid-layout'), 'oci');
    const tree = tempDir(host, 'suid-tree');
    busyboxTree(tree, 0o4755);
    const tar = path.join(tempDir(host, 'suid-tar'), 'layer.tar');
    gnuTar(tar, tree, walk(tree));
    umociImage(layout, 'suid', [tar]);
  });

  /** Fetches the setuid image; returns the setuid busybox's path in the store and the config blob's. */
  async function fetchSuid(dd: { path: string; tspod: DataDir['tspod'] }): Promise<{ id: string; binary: string; config: string; layerDir: string }> {
    const id = fetchedId(await dd.tspod(['fetch', `oci:${layout}:suid`]));
    const rec = imageRecord(dd.path, id);
    const layerDir = path.join(dd.path, 'cas', 'layers', rec.layers[0]!);
    const binary = path.join(layerDir, 'rootfs', 'bin', 'busybox');
    const st = fs.statSync(binary);
    assert.equal(st.mode & 0o7777, 0o4755, 'the store holds the image as it is: a setuid binary');
    assert.equal(st.uid, 0, '… owned by root');
    const config = path.join(dd.path, 'cas', 'blobs', ...rec.configDigest!.split(':'));
    assert.ok(fs.existsSync(config));
    return { id, binary, config, layerDir };
  }

  test('a new data directory: 0700 throughout; nobody cannot reach or run the setuid busybox, nor read the config', async (t) => {
    // The parent is open to everyone, so only the data directory's own modes protect it.
    const parent = tempDir(t, 'fresh');
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'store');
    const dd = { path: dir, tspod: (args: readonly string[]) => runTspod(args, { dir }) };
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const s = await fetchSuid(dd);
    assert.equal(mode(dir), 0o700, 'the data directory');
    assert.equal(mode(path.join(dir, 'cas')), 0o700, 'cas');
    assertPrivate(dir, 'after fetch');
    assertDenied(asNobody(s.binary, [s.binary, s.config, path.join(dir, 'cas')]), 'new store');
  });

  test('a store made with the old 0755 modes: the attack works on it, and the next command closes it', async (t) => {
    // Under /tmp, whose parents every user can walk (a checkout's may not be), so
    // that only the store's own modes decide what nobody reaches.
    const parent = fs.mkdtempSync(`${TMP_TEST_PREFIX}-legacy-`);
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'store');
    const dd = { path: dir, tspod: (args: readonly string[]) => runTspod(args, { dir }) };
    t.after(async () => {
      await runTspod(['gc', '--grace-period=0s', '--expire-prepared=0s'], { dir }).catch(() => undefined);
      fs.rmSync(parent, { recursive: true, force: true });
    });
    const s = await fetchSuid(dd);
    loosen(dd.path);
    // The attack on the old layout: nobody reaches and runs the setuid-root binary.
    const open = asNobody(s.binary, [s.binary, s.config]);
    assert.equal(open.exec.ok, true, `with the old modes nobody runs the store's setuid busybox\n${describeResult(open.exec)}`);
    assert.deepEqual(Object.values(open.access), ['ok', 'ok'], '… and reads the image config');

    // Any command that opens the store fixes the modes.
    ok(await dd.tspod(['image', 'list']));
    assert.equal(mode(dd.path), 0o700);
    assert.equal(mode(path.join(dd.path, 'cas')), 0o700);
    assertDenied(asNobody(s.binary, [s.binary, s.config]), 'old store after `image list`');

    // So does a command that opens only the pods directory.
    ok(await dd.tspod(['prepare', `oci:${layout}:suid`, '--exec=/bin/true']));
    loosen(dd.path);
    ok(await dd.tspod(['list']));
    assert.equal(mode(dd.path), 0o700, 'the data directory, after `list`');
    for (const sub of ['cas', 'pods', 'pods/prepared', 'pods/uuids']) assert.equal(mode(path.join(dd.path, sub)), 0o700, `${sub}, after \`list\``);
    assertDenied(asNobody(s.binary, [s.binary, s.config]), 'old store after `list`');
  });

  test('a data directory that every user can write to (/tmp-like) is refused, and left as it was', async (t) => {
    const shared = tempDir(t, 'shared');
    fs.chmodSync(shared, 0o1777);
    oneLineError(await runTspod(['image', 'list'], { dir: shared }), /data directory .* is writable by every user \(mode 1777\)/);
    oneLineError(await runTspod(['list'], { dir: shared }), /data directory .* is writable by every user/);
    assert.equal(mode(shared), 0o1777);
    assert.deepEqual(fs.readdirSync(shared), []);
  });

  test('pods still run, with apps as non-root users, and their directories are private', async (t) => {
    const dd = makeDataDir(t, 'pods');
    fs.chmodSync(dd.path, 0o755);
    const bb = fixture('busybox').source;
    for (const [user, want] of [
      ['1000', '1000'],
      ['65534', '65534'],
      ['0', '0'],
    ] as const) {
      const r = ok(await dd.tspod(['run', '--net=none', bb, `--user=${user}`, '--exec=/bin/sh', '--', '-c', 'id -u; cat /etc/motd; ls / >/dev/null && echo listed']));
      assert.equal(r.stdout, `${want}\ntspod busybox fixture\nlisted\n`, describeResult(r));
    }
    assertPrivate(dd.path, 'after run');
    ok(await dd.tspod(['gc', '--grace-period=0s']));
  });
});

// ---------------------------------------------------------------- 2. hardlinks into lower layers

describe('a layer with a hardlink into a lower layer renders each image its own content', { skip: SKIP }, () => {
  const host = suiteHost();
  after(() => host.run());
  let layout: string;
  const refs: Record<string, string> = {};
  let diffIds: Record<string, string[]>;

  before(() => {
    layout = path.join(tempDir(host, 'hl-layout'), 'oci');
    const work = tempDir(host, 'hl-work');
    const tars: Record<string, string> = {};
    for (const which of ['a', 'b']) {
      const d = path.join(work, `lower-${which}`);
      fs.mkdirSync(path.join(d, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(d, 'etc', 'f'), `f of image ${which}\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(d, 'etc', `only-${which}`), `${which}\n`);
      tars[which] = path.join(work, `lower-${which}.tar`);
      gnuTar(tars[which]!, d, ['etc', 'etc/f', `etc/only-${which}`]);
    }
    // The upper layer: g is a hardlink to etc/f, which is not in the layer (GNU tar
    // keeps the link entry when its target is deleted from the archive).
    const u = path.join(work, 'upper');
    fs.mkdirSync(path.join(u, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(u, 'etc', 'f'), 'placeholder\n', { mode: 0o755 });
    fs.linkSync(path.join(u, 'etc', 'f'), path.join(u, 'etc', 'g'));
    fs.writeFileSync(path.join(u, 'etc', 'own'), 'own\n');
    tars.upper = path.join(work, 'upper.tar');
    gnuTar(tars.upper, u, ['etc', 'etc/f', 'etc/g', 'etc/own']);
    run('tar', ['--delete', `--file=${tars.upper}`, 'etc/f']);
    assert.match(run('tar', ['-tvf', tars.upper]), /etc\/g link to etc\/f/, 'the upper layer has a hardlink whose target is not in it');
    // A plain layer without links, for a third image on lower a.
    const p = path.join(work, 'plain');
    fs.mkdirSync(path.join(p, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(p, 'etc', 'plain'), 'plain\n');
    tars.plain = path.join(work, 'plain.tar');
    gnuTar(tars.plain, p, ['etc', 'etc/plain']);

    umociImage(layout, 'a', [tars.a!, tars.upper]);
    umociImage(layout, 'b', [tars.b!, tars.upper]);
    umociImage(layout, 'c', [tars.a!, tars.plain]);
    // Same layers as a, another config: another image with the same chain.
    run('umoci', ['config', '--image', `${layout}:a`, '--tag', 'a2', '--config.label', 'variant=a2']);
    diffIds = Object.fromEntries(['a', 'b', 'c', 'a2'].map((tag) => [tag, readLayoutImage(tag, layout).config!.rootfs!.diff_ids]));
    assert.equal(diffIds.a![1], diffIds.b![1], 'the upper layer has one diff_id in both images');
    assert.notEqual(diffIds.a![0], diffIds.b![0], 'the lower layers differ');
    for (const tag of ['a', 'b', 'c']) refs[tag] = umociUnpack(layout, tag, path.join(tempDir(host, `hl-ref-${tag}`), 'bundle'));
    assert.equal(fs.readFileSync(path.join(refs.a!, 'etc/g'), 'utf8'), 'f of image a\n', "umoci: a's g is a's f");
    assert.equal(fs.readFileSync(path.join(refs.b!, 'etc/g'), 'utf8'), 'f of image b\n', "umoci: b's g is b's f");
  });

  async function renderOf(t: Parameters<typeof tempDir>[0], dd: DataDir, id: string): Promise<string> {
    const out = path.join(tempDir(t, 'hl-render'), 'rootfs');
    ok(await dd.tspod(['image', 'render', '--rootfs-only', id, out]));
    return out;
  }

  const sha = (d: string) => d.replace(':', '-');

  for (const order of [
    ['a', 'b'],
    ['b', 'a'],
  ]) {
    test(`fetch ${order.join(' then ')}: each renders its own g; verify ok; gc of a keeps b`, async (t) => {
      const dd = makeDataDir(t, `hl-${order.join('')}`);
      const ids: Record<string, string> = {};
      for (const tag of order) ids[tag] = fetchedId(await dd.tspod(['fetch', `oci:${layout}:${tag}`]));
      for (const tag of order) {
        const out = await renderOf(t, dd, ids[tag]!);
        assert.equal(fs.readFileSync(path.join(out, 'etc/g'), 'utf8'), `f of image ${tag}\n`, `image ${tag} renders its own g`);
        assertSameTree(refs[tag]!, out, { hardlinks: false, labels: ['umoci unpack', `tspod image render ${tag}`] });
      }
      const verify = ok(await dd.tspod(['image', 'verify', ids.a!, ids.b!]));
      assert.doesNotMatch(verify.stderr, /modified|chain|diff_id/, describeResult(verify));

      // The lower layers are shared by diff_id, the upper one is keyed by chain ID per image.
      const ra = imageRecord(dd.path, ids.a!);
      const rb = imageRecord(dd.path, ids.b!);
      assert.equal(ra.layers[0], sha(diffIds.a![0]!));
      assert.equal(rb.layers[0], sha(diffIds.b![0]!));
      assert.match(ra.layers[1]!, /^chain-sha256-[0-9a-f]{64}$/);
      assert.match(rb.layers[1]!, /^chain-sha256-[0-9a-f]{64}$/);
      assert.notEqual(ra.layers[1], rb.layers[1], 'one copy of the upper layer per lower chain');
      const chainA = `sha256:${crypto.createHash('sha256').update(`${diffIds.a![0]} ${diffIds.a![1]}`).digest('hex')}`;
      assert.equal(ra.layers[1], `chain-${sha(chainA)}`, "the key is a's OCI chain ID");
      assert.equal(layerIds(dd.path).length, 4);

      // An image with the same chain shares the chain layer; one without links shares by diff_id.
      const a2 = fetchedId(await dd.tspod(['fetch', `oci:${layout}:a2`]));
      assert.deepEqual(imageRecord(dd.path, a2).layers, ra.layers, 'same chain, same layers');
      const c = fetchedId(await dd.tspod(['fetch', `oci:${layout}:c`]));
      const rc = imageRecord(dd.path, c);
      assert.deepEqual(rc.layers, [sha(diffIds.c![0]!), sha(diffIds.c![1]!)], 'a layer without links is keyed by its diff_id');
      assert.equal(rc.layers[0], ra.layers[0], 'and the lower layer is shared');
      assert.equal(layerIds(dd.path).length, 5);
      assertSameTree(refs.c!, await renderOf(t, dd, c), { hardlinks: false, labels: ['umoci unpack', 'tspod image render c'] });

      // gc of a (and a2): its chain layer goes, b stays whole.
      ok(await dd.tspod(['image', 'rm', ids.a!, a2]));
      ok(await dd.tspod(['image', 'gc']));
      const left = layerIds(dd.path);
      assert.ok(!left.includes(ra.layers[1]!), "a's chain layer was collected");
      assert.ok(left.includes(ra.layers[0]!), 'the lower layer c still uses stays');
      for (const l of rb.layers) assert.ok(left.includes(l), `b's layer ${l} stays`);
      const out = await renderOf(t, dd, ids.b!);
      assert.equal(fs.readFileSync(path.join(out, 'etc/g'), 'utf8'), 'f of image b\n');
      assertSameTree(refs.b!, out, { hardlinks: false, labels: ['umoci unpack', 'tspod image render b after gc'] });
      ok(await dd.tspod(['image', 'verify', ids.b!, c]));
      assert.deepEqual(incompleteLayers(dd.path), []);
      assert.deepEqual(scratchLeft(dd.path), []);
    });
  }

  test('export of a chain-keyed image, and a pod using one', async (t) => {
    const dd = makeDataDir(t, 'hl-export');
    const b = fetchedId(await dd.tspod(['fetch', `oci:${layout}:b`]));
    fetchedId(await dd.tspod(['fetch', `oci:${layout}:a`]));
    const aci = path.join(tempDir(t, 'hl-aci'), 'b.aci');
    ok(await dd.tspod(['image', 'export', b, aci]));
    const back = fetchedId(await dd.tspod(['fetch', aci]));
    const out = await renderOf(t, dd, back);
    assert.equal(fs.readFileSync(path.join(out, 'etc/g'), 'utf8'), 'f of image b\n', "the exported ACI has b's g");
    // A prepared pod keeps b's chain layer through gc even once the image is gone.
    const uuid = ok(await dd.tspod(['prepare', '--quiet', `oci:${layout}:b`, '--exec=/etc/g'])).stdout.trim();
    const podRefs = JSON.parse(fs.readFileSync(path.join(dd.path, 'pods', 'prepared', uuid, 'store-refs.json'), 'utf8')) as { layers: string[] };
    const chain = imageRecord(dd.path, b).layers[1]!;
    assert.ok(podRefs.layers.includes(chain), 'the pod refers to the chain-keyed layer');
    ok(await dd.tspod(['image', 'rm', b]));
    ok(await dd.tspod(['image', 'gc']));
    assert.ok(layerIds(dd.path).includes(chain), 'kept while the pod is on disk');
    ok(await dd.tspod(['rm', uuid]));
    ok(await dd.tspod(['image', 'gc']));
    assert.ok(!layerIds(dd.path).includes(chain), 'collected once the pod is gone');
  });
});

// ---------------------------------------------------------------- 3. one layer listed twice

describe('an image that lists one layer twice', { skip: SKIP }, () => {
  const host = suiteHost();
  after(() => host.run());
  let layout: string;
  let ref: string;

  before(() => {
    layout = path.join(tempDir(host, 'dup-layout'), 'oci');
    const work = tempDir(host, 'dup-work');
    const base = path.join(work, 'base');
    busyboxTree(base);
    const x = path.join(work, 'x');
    fs.mkdirSync(path.join(x, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(x, 'etc', 'which'), 'x\n');
    fs.writeFileSync(path.join(x, 'etc', 'x-only'), 'x-only\n');
    const y = path.join(work, 'y');
    fs.mkdirSync(path.join(y, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(y, 'etc', 'which'), 'y\n');
    fs.writeFileSync(path.join(y, 'etc', 'y-only'), 'y-only\n');
    fs.writeFileSync(path.join(y, 'etc', '.wh.x-only'), ''); // y deletes x's file
    const tars = ['base', 'x', 'y'].map((n) => path.join(work, `${n}.tar`));
    gnuTar(tars[0]!, base, walk(base));
    gnuTar(tars[1]!, x, walk(x));
    gnuTar(tars[2]!, y, walk(y));
    umociImage(layout, 'xy', tars);

    // By hand: the manifest lists layer x again on top, the config's diff_ids too.
    const img = readLayoutImage('xy', layout);
    const blob = (b: Buffer) => {
      const d = crypto.createHash('sha256').update(b).digest('hex');
      fs.writeFileSync(path.join(layout, 'blobs', 'sha256', d), b);
      return { digest: `sha256:${d}`, size: b.length };
    };
    const config = structuredClone(img.config!) as Record<string, unknown> & { rootfs: { diff_ids: string[] }; history?: unknown[] };
    config.rootfs.diff_ids.push(config.rootfs.diff_ids[1]!);
    if (config.history) config.history.push({ created_by: 'layer x again (hand-edited)' });
    const cfg = blob(Buffer.from(JSON.stringify(config)));
    const manifest = structuredClone(img.manifest) as { config: { digest: string; size: number }; layers: unknown[] };
    manifest.config = { ...manifest.config, ...cfg };
    manifest.layers.push(manifest.layers[1]);
    const man = blob(Buffer.from(JSON.stringify(manifest)));
    const indexFile = path.join(layout, 'index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { manifests: Array<Record<string, unknown>> };
    index.manifests.push({ ...img.descriptor, ...man, annotations: { 'org.opencontainers.image.ref.name': 'dup' } });
    fs.writeFileSync(indexFile, JSON.stringify(index));
    ref = umociUnpack(layout, 'dup', path.join(tempDir(host, 'dup-ref'), 'bundle'));
    assert.equal(fs.readFileSync(path.join(ref, 'etc/which'), 'utf8'), 'x\n', 'umoci: the top copy of x wins');
    assert.ok(fs.existsSync(path.join(ref, 'etc/x-only')), "umoci: x's file is back over y's whiteout");
  });

  test('fetches, renders as umoci unpacks it, and runs', async (t) => {
    const dd = makeDataDir(t, 'dup');
    const id = fetchedId(await dd.tspod(['fetch', `oci:${layout}:dup`]));
    const rec = imageRecord(dd.path, id);
    assert.equal(rec.layers.length, 4);
    assert.equal(rec.layers[1], rec.layers[3], 'the record keeps the image as listed');
    assert.equal(layerIds(dd.path).length, 3, 'the layer is stored once');
    const out = path.join(tempDir(t, 'dup-render'), 'rootfs');
    ok(await dd.tspod(['image', 'render', '--rootfs-only', id, out]));
    assertSameTree(ref, out, { labels: ['umoci unpack', 'tspod image render'] });
    ok(await dd.tspod(['image', 'verify', id]));

    const r = await dd.tspod(['run', '--net=none', `oci:${layout}:dup`, '--exec=/bin/true']);
    assert.equal(r.code, 0, describeResult(r));
    const cat = ok(await dd.tspod(['run', '--net=none', id, '--exec=/bin/sh', '--', '-c', 'cat /etc/which /etc/x-only /etc/y-only']));
    assert.equal(cat.stdout, 'x\nx-only\ny-only\n', 'the overlay shows what umoci unpacked');
    // The pod's lower directories: each layer once, the repeated one at its top position.
    const prepared = ok(await dd.tspod(['prepare', '--quiet', id, '--name=dup', '--exec=/bin/true'])).stdout.trim();
    const podDir = path.join(dd.path, 'pods', 'prepared', prepared);
    const dirs = JSON.parse(fs.readFileSync(path.join(podDir, 'appsinfo', 'dup', 'layers'), 'utf8')) as string[];
    assert.equal(new Set(dirs).size, dirs.length, 'no lower directory twice');
    assert.deepEqual(
      dirs.map((d) => path.basename(path.dirname(d))),
      [rec.layers[0], rec.layers[2], rec.layers[3]],
      'base, y, then x on top',
    );
    ok(await dd.tspod(['rm', prepared]));
    ok(await dd.tspod(['gc', '--grace-period=0s']));
  });
});

// ---------------------------------------------------------------- 4. an ACI claiming a docker name

describe("an ACI cannot claim a docker:// image's name", { skip: SKIP }, () => {
  const host = suiteHost();
  after(() => host.run());
  let aci: string;

  before(() => {
    const work = tempDir(host, 'claim');
    const d = path.join(work, 'aci');
    busyboxTree(path.join(d, 'rootfs'));
    fs.writeFileSync(path.join(d, 'rootfs', 'etc', 'who'), 'the impostor ACI\n');
    fs.writeFileSync(
      path.join(d, 'manifest'),
      JSON.stringify({
        acKind: 'ImageManifest',
        acVersion: '0.8.11',
        name: 'docker.io/library/busybox',
        labels: [
          { name: 'version', value: 'latest' },
          { name: 'os', value: 'linux' },
          { name: 'arch', value: 'amd64' },
        ],
        app: { exec: ['/bin/cat', '/etc/who'], user: '0', group: '0' },
      }),
    );
    aci = path.join(work, 'busybox.aci');
    gnuTar(aci, d, ['manifest', 'rootfs', ...walk(path.join(d, 'rootfs')).map((p) => `rootfs/${p}`)]);
  });

  test('docker://busybox and docker://HOST/library/busybox never resolve to it, whatever the pull policy', async (t) => {
    const dd = makeDataDir(t, 'claim');
    const aciId = fetchedId(await dd.tspod(['fetch', '--full', aci]), true);
    const list = ok(await dd.tspod(['image', 'list', '--no-legend', '--full', '--fields=id,name']));
    assert.match(list.stdout, new RegExp(`${aciId}\\s+docker\\.io/library/busybox:latest`), 'the ACI keeps its (appc) name');

    // The store-only lookups of the docker reference do not find it …
    for (const r of ['docker://busybox', 'docker://docker.io/library/busybox:latest', 'docker://busybox:latest']) {
      oneLineError(await dd.tspod(['fetch', '--pull-policy=never', r]), /is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new$/);
    }
    // … and with the default policy of run and prepare (new), tspod goes to the
    // registry (unreachable here) instead of running the ACI.
    for (const cmd of [['prepare'], ['run', '--net=none']]) {
      const r = await dd.tspod([...cmd, 'docker://busybox']);
      assert.equal(r.code, 254, describeResult(r));
      assert.doesNotMatch(r.stdout + r.stderr, /impostor|using image from local store/, describeResult(r));
      assert.match(r.stderr, /cannot reach registry|registry-1\.docker\.io/, describeResult(r));
    }
    const prepared = path.join(dd.path, 'pods', 'prepared');
    assert.deepEqual(fs.existsSync(prepared) ? fs.readdirSync(prepared) : [], [], 'no pod was prepared');

    // A name without a transport is an appc-style lookup: that finds the ACI by its own name.
    const byName = fetchedId(await dd.tspod(['fetch', '--full', '--pull-policy=never', 'docker.io/library/busybox:latest']), true);
    assert.equal(byName, aciId);

    // With a registry that has the real image, docker:// gets the registry's.
    const reg = await startRegistry({ t });
    const pushed = await reg.pushFixture('busybox', 'library/busybox:latest');
    const real = fetchedId(await dd.tspod([HTTP, 'fetch', '--full', '--pull-policy=new', pushed]), true);
    assert.notEqual(real, aciId);
    assert.equal(real, readLayoutImage('busybox').descriptor.digest.replace(':', '-'));
    const runReal = ok(await dd.tspod([HTTP, 'run', '--net=none', pushed, '--exec=/bin/cat', '--', '/etc/motd']));
    assert.equal(runReal.stdout, 'tspod busybox fixture\n');
    // `busybox` (Docker's short name) now finds the registry image, not the ACI.
    assert.equal(fetchedId(await dd.tspod(['fetch', '--full', '--pull-policy=never', 'busybox']), true), real);
    ok(await dd.tspod(['gc', '--grace-period=0s']));
  });

  test("a store from before the split (the ACI's name among the docker names) is not fooled either", async (t) => {
    const dd = makeDataDir(t, 'claim-old');
    const aciId = fetchedId(await dd.tspod(['fetch', '--full', aci]), true);
    // What tspod 0.1.0 wrote: the ACI's name in cas/names.
    const name = encodeURIComponent('docker.io/library/busybox:latest');
    fs.renameSync(path.join(dd.path, 'cas', 'appc-names', name), path.join(dd.path, 'cas', 'names', name));
    oneLineError(await dd.tspod(['fetch', '--pull-policy=never', 'docker://busybox']), /is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new$/);
    const r = await dd.tspod(['prepare', 'docker://busybox']);
    assert.equal(r.code, 254, describeResult(r));
    assert.doesNotMatch(r.stderr, /using image from local store/);
    assert.equal(fetchedId(await dd.tspod(['fetch', '--full', '--pull-policy=never', 'docker.io/library/busybox:latest']), true), aciId);
    const list = ok(await dd.tspod(['image', 'list', '--no-legend', '--full', '--fields=id,name']));
    assert.match(list.stdout, new RegExp(`${aciId}\\s+docker\\.io/library/busybox:latest`));
  });
});
