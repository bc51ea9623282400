// Security issue 6 (items 2, 4 and the TypeScript part of 7): image paths never
// reach the host.
//
//  - The resolver (native/image-fs.ts): overlay rules (whiteouts, opaque
//    directories, directories over non-directories), symlinks followed inside the
//    image only (absolute targets and `..` stop at the image root), loops, and no
//    host symlink ever followed, also when a file changes between the walk and
//    the read. Checked against a real overlayfs mount where overlay has an answer.
//  - stage1's imageHas uses it: an /etc that is a symlink to a host directory does
//    not make the host's files the image's; an /etc/hosts that is a symlink counts.
//  - prepare's volume pre-fill copies the image's own directory only: an image
//    whose lower layer has `x -> /host/dir` and upper layer `x/data/` with
//    Volumes {"/x/data"} gets a volume without the host's (0600) files, and the
//    host directory is untouched.
//  - Paths with `..` (image Volumes / WorkingDir / appc mount points, pod
//    manifests, --mount, --working-dir): refused with one line and exit 254,
//    nothing made on the host, no pod and no image record left.
//
// Crafted images are written by python3 (test/store-util.ts), never by tspod.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ImageFs, imagePathProblem, resolveInImage } from '../native/image-fs.js';
import { imageHas } from '../stage1/pod-setup.js';
import { formatTree, listTree, makeDataDir, makeTempDir, type DataDir } from './harness/index.js';
import { BUSYBOX, SKIP, podsTree } from './pods-util.js';
import { aciManifest, assertUnchanged, imageIds, makeAci, makeLayout, oneLineError, python, snapshot } from './store-util.js';

const IS_ROOT = process.getuid?.() === 0;
const made: string[] = [];
after(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(name: string): string {
  const d = makeTempDir(`secpaths-${name}`);
  made.push(d);
  return d;
}

// ------------------------------------------------------------ layer directories made by hand

type Ent =
  | [string, 'dir']
  | [string, 'file', string?]
  | [string, 'symlink', string]
  | [string, 'whiteout']
  | [string, 'opaque'];

/** A layer directory base/name built from entries in order (never through one of its own symlinks). */
function layer(base: string, name: string, entries: Ent[]): string {
  const root = path.join(base, name);
  fs.mkdirSync(root, { recursive: true });
  const opaque: string[] = [];
  for (const e of entries) {
    const abs = path.join(root, e[0]);
    if (e[0] !== '') fs.mkdirSync(path.dirname(abs), { recursive: true });
    switch (e[1]) {
      case 'dir':
        fs.mkdirSync(abs, { recursive: true });
        break;
      case 'file':
        fs.writeFileSync(abs, e[2] ?? `${name}:${e[0]}\n`);
        break;
      case 'symlink':
        fs.symlinkSync(e[2], abs);
        break;
      case 'whiteout': {
        const r = spawnSync('mknod', [abs, 'c', '0', '0']);
        assert.equal(r.status, 0, `mknod ${abs}: ${r.stderr}`);
        break;
      }
      case 'opaque':
        fs.mkdirSync(abs, { recursive: true });
        opaque.push(abs);
        break;
    }
  }
  if (opaque.length) {
    python(`import os, sys\nfor p in sys.argv[1:]: os.setxattr(p, 'trusted.overlay.opaque', b'y', follow_symlinks=False)`, opaque);
  }
  return root;
}

/** A host directory outside every layer, with a 0600 secret in it and in data/. */
function hostSecrets(): { dir: string; snapshot: () => string } {
  const dir = scratch('host');
  fs.mkdirSync(path.join(dir, 'data'));
  for (const f of ['secret', 'data/secret', 'passwd', 'hosts']) fs.writeFileSync(path.join(dir, f), `host ${f} ${crypto.randomBytes(4).toString('hex')}\n`, { mode: 0o600 });
  return { dir, snapshot: () => formatTree(listTree(dir, { mtime: 'all', root: false })) };
}

/** `../` enough times to climb from any layer directory to the host's root. */
const CLIMB = '../'.repeat(64);

describe('the image path resolver (native/image-fs.ts)', { skip: IS_ROOT ? false : 'needs root (whiteouts, trusted.* xattrs)' }, () => {
  test('symlinks pointing out of the image are resolved inside it: absolute and relative `..` targets', () => {
    const base = scratch('escape');
    const host = hostSecrets();
    const hostBefore = host.snapshot();
    const l1 = layer(base, 'l1', [
      ['etc', 'dir'],
      ['etc/passwd', 'file', 'root:x:0:0:image:/root:/bin/sh\n'],
      ['abs', 'symlink', host.dir],
      ['rel', 'symlink', `${CLIMB}${host.dir.slice(1)}`],
      ['updir', 'symlink', '../../..'],
      ['rel-etc', 'symlink', `${CLIMB}etc`],
      ['abs-passwd', 'symlink', '/etc/passwd'],
      ['x', 'symlink', host.dir],
    ]);
    const l2 = layer(base, 'l2', [
      ['x', 'dir'],
      ['x/data', 'dir'],
      ['x/data/own', 'file', 'image content\n'],
    ]);
    const img = new ImageFs([l1, l2]);
    // Through the outward symlinks: the host's files are not the image's.
    for (const p of ['/abs/secret', '/abs/data/secret', '/rel/secret', '/rel/data', '/abs/passwd']) {
      assert.equal(img.resolve(p), undefined, `${p} is not in the image`);
      assert.equal(img.readFile(p), undefined, `${p} cannot be read`);
    }
    // `..` stops at the image root, as RESOLVE_IN_ROOT would.
    assert.equal(img.resolve('/updir')?.imagePath, '/');
    assert.equal(img.resolve('/updir/etc/passwd')?.hostPath, path.join(l1, 'etc/passwd'));
    assert.equal(img.resolve('/../../../etc/passwd')?.hostPath, path.join(l1, 'etc/passwd'));
    assert.equal(img.readFile('/rel-etc/passwd')?.toString(), 'root:x:0:0:image:/root:/bin/sh\n');
    assert.equal(img.readFile('/abs-passwd')?.toString(), 'root:x:0:0:image:/root:/bin/sh\n');
    // Not following the last one: the symlink itself.
    assert.ok(img.resolve('/abs', { followFinal: false })?.stat.isSymbolicLink());
    assert.equal(img.resolve('/abs'), undefined);
    // The upper directory x hides the lower symlink x: only the image's own x/data.
    const data = img.resolve('/x/data');
    assert.ok(data && data.stat.isDirectory());
    assert.deepEqual(data.merged, [path.join(l2, 'x/data')]);
    assert.equal(img.resolve('/x/secret'), undefined);
    assert.equal(img.resolve('/x/data/secret'), undefined);
    // Every host path handed out is inside a layer directory.
    for (const p of ['/x/data/own', '/etc/passwd', '/updir/etc', '/abs-passwd']) {
      const e = img.resolve(p)!;
      assert.ok([l1, l2].some((l) => e.hostPath.startsWith(`${l}/`)), `${p} → ${e.hostPath}`);
    }
    assert.equal(host.snapshot(), hostBefore, 'the host directory is unchanged');
  });

  test('whiteouts, opaque directories and non-directories hide lower layers, as overlayfs does', (t) => {
    const base = scratch('overlay');
    const l1 = layer(base, 'l1', [
      ['a/f', 'file'],
      ['a/g', 'file'],
      ['b/f', 'file'],
      ['c/f', 'file'],
      ['d/f', 'file'],
      ['e', 'file'],
      ['gone/deep/f', 'file'],
      ['keep/f', 'file'],
      ['link', 'symlink', 'keep'],
    ]);
    const l2 = layer(base, 'l2', [
      ['a/g', 'whiteout'],
      ['a/h', 'file'],
      ['b', 'opaque'],
      ['b/n', 'file'],
      ['c', 'file'],
      ['e', 'dir'],
      ['e/f', 'file'],
      ['gone', 'whiteout'],
      ['link', 'dir'],
      ['link/z', 'file'],
    ]);
    const l3 = layer(base, 'l3', [
      ['d', 'opaque'],
      ['keep/g', 'file'],
    ]);
    const layers = [l1, l2, l3];
    const img = new ImageFs(layers);
    const expect: Record<string, string | undefined> = {
      '/a/f': l1,
      '/a/g': undefined,
      '/a/h': l2,
      '/b/f': undefined,
      '/b/n': l2,
      '/c': l2,
      '/c/f': undefined,
      '/d': l3,
      '/d/f': undefined,
      '/e/f': l2,
      '/gone': undefined,
      '/gone/deep/f': undefined,
      '/keep/f': l1,
      '/keep/g': l3,
      '/link/z': l2,
      '/link/f': undefined,
    };
    for (const [p, want] of Object.entries(expect)) {
      const e = img.resolve(p, { followFinal: false });
      assert.equal(e?.layer, want, `${p}: provided by ${want ?? 'nothing'}`);
    }
    assert.deepEqual(img.resolve('/a')?.merged, [path.join(l2, 'a'), path.join(l1, 'a')]);
    assert.deepEqual(img.resolve('/b')?.merged, [path.join(l2, 'b')], 'an opaque directory stops the merge');
    assert.deepEqual(img.resolve('/keep')?.merged, [path.join(l3, 'keep'), path.join(l1, 'keep')]);
    assert.deepEqual(img.resolve('/link')?.merged, [path.join(l2, 'link')], 'a directory over a symlink hides it');

    // A layer whose root is opaque hides the layers below it.
    const top = layer(base, 'top', [['', 'opaque'], ['only', 'file']]);
    const hidden = new ImageFs([l1, l2, top]);
    assert.equal(hidden.resolve('/a/f'), undefined);
    assert.equal(hidden.resolve('/only')?.layer, top);

    // The kernel's overlayfs of the same layers agrees on what exists.
    const mnt = scratch('mnt');
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${l3}:${l2}:${l1}`, mnt]);
    if (m.status !== 0) {
      t.skip(`overlayfs not mountable here: ${m.stderr}`);
      return;
    }
    try {
      for (const p of Object.keys(expect)) {
        let inMount: fs.Stats | undefined;
        try {
          inMount = fs.lstatSync(path.join(mnt, p));
        } catch {
          inMount = undefined;
        }
        const e = img.resolve(p, { followFinal: false });
        assert.equal(Boolean(e), Boolean(inMount), `${p}: the resolver and overlayfs agree on whether it exists`);
        if (e && inMount) assert.equal(e.stat.mode & 0o170000, inMount.mode & 0o170000, `${p}: same type`);
      }
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('symlink loops end (40 links, as the kernel counts) and are "no such file"', () => {
    const base = scratch('loops');
    const chain: Ent[] = [];
    for (let i = 0; i < 45; i++) chain.push([`c${i}`, 'symlink', `c${i + 1}`]);
    const l1 = layer(base, 'l1', [
      ['self', 'symlink', 'self'],
      ['a', 'symlink', 'b'],
      ['b', 'symlink', '/a'],
      ['dirloop', 'symlink', 'dirloop/x'],
      ['c45', 'file', 'end\n'],
      ...chain,
    ]);
    const img = new ImageFs([l1]);
    for (const p of ['/self', '/a', '/b/x', '/dirloop', '/c0']) assert.equal(img.resolve(p), undefined, p);
    assert.equal(img.readFile('/c6')?.toString(), 'end\n', '39 links are followed');
    assert.equal(img.resolve('/c4'), undefined, '41 links are a loop');
    assert.ok(img.resolve('/self', { followFinal: false })?.stat.isSymbolicLink());
  });

  test('a file that turns into a symlink between the walk and the read is not read through it', () => {
    const base = scratch('race');
    const host = hostSecrets();
    const l1 = layer(base, 'l1', [['etc/passwd', 'file', 'image\n']]);
    const img = new ImageFs([l1]);
    const e = img.resolve('/etc/passwd');
    assert.ok(e?.stat.isFile());
    // The walk is cached: swap the file for a symlink to the host's secret.
    fs.rmSync(path.join(l1, 'etc/passwd'));
    fs.symlinkSync(path.join(host.dir, 'passwd'), path.join(l1, 'etc/passwd'));
    assert.throws(() => img.readFile('/etc/passwd'), /passwd/);
    // And an /etc that became a symlink to a host directory.
    fs.rmSync(path.join(l1, 'etc'), { recursive: true });
    fs.symlinkSync(host.dir, path.join(l1, 'etc'));
    assert.throws(() => img.readFile('/etc/passwd'), /passwd/);
    assert.equal(new ImageFs([l1]).resolve('/etc/passwd'), undefined);
  });

  test('imagePathProblem: absolute, no `..`', () => {
    assert.equal(imagePathProblem('/data'), undefined);
    assert.equal(imagePathProblem('/var/lib/./x/'), undefined);
    assert.equal(imagePathProblem('/a..b/..c'), undefined);
    assert.match(imagePathProblem('/../../tmp/x')!, /has a "\.\." component/);
    assert.match(imagePathProblem('/a/b/..')!, /has a "\.\." component/);
    assert.match(imagePathProblem('data')!, /not an absolute path/);
    assert.match(imagePathProblem('')!, /empty/);
    assert.match(imagePathProblem('/a\0b')!, /NUL/);
    assert.match(imagePathProblem(undefined)!, /empty/);
  });

  test("stage1's imageHas: same rules, an outward symlink is never looked through on the host", () => {
    const base = scratch('imagehas');
    const host = hostSecrets();
    // etc is a symlink to a host directory that has a `hosts`: the image has no /etc/hosts.
    const out = layer(base, 'out', [['etc', 'symlink', host.dir]]);
    assert.equal(imageHas([out], 'etc/hosts'), false);
    assert.equal(imageHas([out], 'etc'), true, 'the symlink itself is there');
    const rel = layer(base, 'rel', [['etc', 'symlink', `${CLIMB}${host.dir.slice(1)}`]]);
    assert.equal(imageHas([rel], 'etc/hosts'), false);
    // /etc/hosts a symlink into /proc (or anywhere): the image has it, it is not followed.
    const proc = layer(base, 'proc', [['etc/hosts', 'symlink', '/proc/self/net/nonexistent']]);
    assert.equal(imageHas([proc], 'etc/hosts'), true);
    // Whiteouts and opaque directories.
    const lower = layer(base, 'lower', [['etc/hosts', 'file'], ['etc/mtab', 'file']]);
    const upper = layer(base, 'upper', [['etc/hosts', 'whiteout']]);
    assert.equal(imageHas([lower, upper], 'etc/hosts'), false);
    assert.equal(imageHas([lower, upper], 'etc/mtab'), true);
    const opaque = layer(base, 'opaque', [['etc', 'opaque']]);
    assert.equal(imageHas([lower, opaque], 'etc/mtab'), false);
    assert.equal(imageHas([lower, opaque], 'etc'), true);
    // etc symlinked inside the image is followed inside it.
    const inner = layer(base, 'inner', [['etc', 'symlink', 'private/etc'], ['private/etc/hosts', 'file']]);
    assert.equal(imageHas([inner], 'etc/hosts'), true);
    assert.equal(resolveInImage([inner], '/etc/hosts')?.hostPath, path.join(inner, 'private/etc/hosts'));
  });
});

// ------------------------------------------------------------ prepare with crafted images

let dd: DataDir;
let busyboxId = '';
const canaries: string[] = [];

/** A /tmp path that must never appear; removed at the end if it did. */
function canaryPath(): string {
  const p = `/tmp/x-canary-${crypto.randomBytes(6).toString('hex')}`;
  canaries.push(p);
  return p;
}

function assertNoCanary(p: string, what: string): void {
  assert.equal(fs.existsSync(p), false, `${what}: ${p} was created on the host`);
}

describe('prepare and fetch keep image paths inside the image', { skip: SKIP }, () => {
  before(async () => {
    dd = makeDataDir(undefined, 'secpaths');
    const r = await dd.tspod(['fetch', BUSYBOX]);
    assert.equal(r.code, 0, r.stderr);
    const images = JSON.parse((await dd.tspod(['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
    busyboxId = images.find((i) => i.name.endsWith(':busybox'))!.id;
  });
  after(async () => {
    for (const c of canaries) fs.rmSync(c, { recursive: true, force: true });
    if (dd) await dd.remove();
  });

  test('volume pre-fill never copies a host directory that a lower layer symlinks to', async () => {
    const host = hostSecrets();
    const before = host.snapshot();
    const layout = path.join(scratch('layout'), 'oci');
    makeLayout(
      layout,
      'evil',
      [
        [
          { name: 'bin', type: 'dir' },
          { name: 'bin/sh', data: '#!/bin/sh\n', mode: 0o755 },
          // x → the host directory (absolute), y → the same through `..`, v and w are volume paths that are symlinks out.
          { name: 'x', type: 'symlink', link: host.dir },
          { name: 'y', type: 'symlink', link: `${CLIMB}${host.dir.slice(1)}` },
          { name: 'v', type: 'symlink', link: host.dir },
          { name: 'w', type: 'symlink', link: `${CLIMB}${host.dir.slice(1)}/data` },
          { name: 'z', type: 'symlink', link: 'real' },
          { name: 'real', type: 'dir' },
          { name: 'real/kept', data: 'the image own z\n' },
        ],
        [
          { name: 'x', type: 'dir' },
          { name: 'x/data', type: 'dir', mode: 0o750 },
          { name: 'x/data/own', data: 'the image own x/data\n' },
          { name: 'y', type: 'dir' },
          { name: 'y/data', type: 'dir' },
          { name: 'y/data/own', data: 'the image own y/data\n' },
        ],
      ],
      { config: { Cmd: ['/bin/sh'], Volumes: { '/x/data': {}, '/y/data': {}, '/v': {}, '/w': {}, '/z': {} } } },
    );
    const r = await dd.tspod(['prepare', '--quiet', `oci:${layout}:evil`, '--name=evil']);
    assert.equal(r.code, 0, `prepare: ${r.stderr}`);
    const uuid = r.stdout.trim();
    const vols = path.join(dd.path, 'pods/prepared', uuid, 'sharedVolumes');
    const files = (name: string) => formatTree(listTree(path.join(vols, name), { root: false }));
    const listing = (name: string) => fs.readdirSync(path.join(vols, name)).sort();
    assert.deepEqual(listing('evil-volume-x-data'), ['own'], `the image's own x/data only:\n${files('evil-volume-x-data')}`);
    assert.equal(fs.readFileSync(path.join(vols, 'evil-volume-x-data/own'), 'utf8'), 'the image own x/data\n');
    assert.equal(fs.statSync(path.join(vols, 'evil-volume-x-data')).mode & 0o7777, 0o750, 'the volume takes the image directory mode');
    assert.deepEqual(listing('evil-volume-y-data'), ['own']);
    assert.deepEqual(listing('evil-volume-v'), [], 'a volume path that is a symlink out of the image gets nothing');
    assert.deepEqual(listing('evil-volume-w'), []);
    assert.deepEqual(listing('evil-volume-z'), ['kept'], 'a symlink inside the image is followed inside it');
    // No host secret anywhere in the pod.
    const pod = listTree(path.join(dd.path, 'pods/prepared', uuid), { root: false });
    for (const p of pod.keys()) assert.doesNotMatch(p, /secret/, `the pod has ${p}`);
    assert.equal(host.snapshot(), before, 'the host directory is unchanged');
    assert.equal((await dd.tspod(['rm', uuid])).code, 0);
  });

  test('an image Volumes path with `..` is refused at fetch: one line, exit 254, no image record, nothing on the host', async () => {
    const canary = canaryPath();
    const layout = path.join(scratch('dotdot'), 'oci');
    const climb = `/${CLIMB}${canary.slice(1)}`;
    const layers = [[{ name: 'bin', type: 'dir' as const }, { name: 'bin/sh', data: '#!/bin/sh\n', mode: 0o755 }]];
    makeLayout(layout, 'vol', layers, { config: { Cmd: ['/bin/sh'], Volumes: { [climb]: {} } } });
    makeLayout(layout, 'rel', layers, { config: { Cmd: ['/bin/sh'], Volumes: { 'data': {} } } });
    makeLayout(layout, 'wd', layers, { config: { Cmd: ['/bin/sh'], WorkingDir: climb } });
    const imagesBefore = imageIds(dd.path);
    const namesBefore = (await dd.tspod(['image', 'list', '--no-legend', '--fields=id,name'])).stdout;
    const podsBefore = podsTree(dd.path);
    for (const [tag, re] of [
      ['vol', /volume "\/(\.\.\/)+tmp\/x-canary-[0-9a-f]+" has a "\.\." component: refusing the image$/],
      ['rel', /volume "data" is not an absolute path: refusing the image$/],
      ['wd', /working directory "\/(\.\.\/)+tmp\/x-canary-[0-9a-f]+" has a "\.\." component: refusing the image$/],
    ] as const) {
      oneLineError(await dd.tspod(['fetch', `oci:${layout}:${tag}`]), re);
      // run fetches and runs in one go: the same refusal, before any pod.
      oneLineError(await dd.tspod(['run', `oci:${layout}:${tag}`]), re);
      assertNoCanary(canary, tag);
    }
    assert.deepEqual(imageIds(dd.path), imagesBefore, 'no image record');
    assert.equal((await dd.tspod(['image', 'list', '--no-legend', '--fields=id,name'])).stdout, namesBefore);
    assert.deepEqual(podsTree(dd.path), podsBefore, 'no pod');
  });

  test('an ACI mount point or working directory with `..` is refused at prepare: exit 254, no pod, nothing on the host', async () => {
    const canary = canaryPath();
    const dir = scratch('aci');
    const climb = `/${CLIMB}${canary.slice(1)}`;
    const rootfs = [
      { name: 'rootfs', type: 'dir' as const },
      { name: 'rootfs/bin', type: 'dir' as const },
      { name: 'rootfs/bin/sh', data: '#!/bin/sh\n', mode: 0o755 },
    ];
    const mp = path.join(dir, 'mp.aci');
    makeAci(mp, [
      { name: 'manifest', data: aciManifest('example.com/dotdot-mp', { app: { exec: ['/bin/sh'], user: '0', group: '0', mountPoints: [{ name: 'data', path: climb }] } }) },
      ...rootfs,
    ]);
    const wd = path.join(dir, 'wd.aci');
    makeAci(wd, [{ name: 'manifest', data: aciManifest('example.com/dotdot-wd', { app: { exec: ['/bin/sh'], user: '0', group: '0', workingDirectory: climb } }) }, ...rootfs]);
    const podsBefore = podsTree(dd.path);
    for (const [file, re] of [
      [mp, /^tspod: image "example\.com\/dotdot-mp": mount point data path "\/(\.\.\/)+tmp\/x-canary-[0-9a-f]+" has a "\.\." component$/],
      [wd, /^tspod: image "example\.com\/dotdot-wd": working directory "\/(\.\.\/)+tmp\/x-canary-[0-9a-f]+" has a "\.\." component$/],
    ] as const) {
      // The fetch may store it (the ACI manifest check is store/sources/aci.ts's): prepare and run must refuse it.
      // (By ID: with a file name, prepare first says "using image from file", as rkt does.)
      const f = await dd.tspod(['fetch', file]);
      if (f.code === 0) {
        const id = f.stdout.trim();
        oneLineError(await dd.tspod(['prepare', id]), re);
        oneLineError(await dd.tspod(['run', id]), re);
      } else {
        oneLineError(f, /has a "\.\." component/);
      }
      assertNoCanary(canary, file);
    }
    assert.deepEqual(podsTree(dd.path), podsBefore, 'no pod');
  });

  // store/importer.ts converts the config (where the check is) right after parsing
  // it: the image is refused before any layer is fetched.
  test('a refused OCI image leaves no layer or blob either', async () => {
    const layout = path.join(scratch('dotdot-store'), 'oci');
    makeLayout(layout, 'vol', [[{ name: 'bin', type: 'dir' }, { name: 'bin/new', data: crypto.randomBytes(8).toString('hex') }]], {
      config: { Cmd: ['/bin/sh'], Volumes: { '/../x': {} } },
    });
    const before = snapshot(dd.path);
    oneLineError(await dd.tspod(['fetch', `oci:${layout}:vol`]), /has a "\.\." component/);
    assertUnchanged(before, dd.path, 'a refused fetch');
  });

  // The ACI manifest check (store/sources/aci.ts, validateAciManifest) calls
  // checkAppPaths (store/manifest/appc.ts): the fetch is refused, nothing stored.
  test('an ACI with a `..` mount point or working directory is refused at fetch', async () => {
    const file = path.join(scratch('aci-fetch'), 'mp.aci');
    makeAci(file, [
      { name: 'manifest', data: aciManifest('example.com/dotdot-fetch', { app: { exec: ['/bin/sh'], user: '0', group: '0', mountPoints: [{ name: 'data', path: '/../x' }] } }) },
      { name: 'rootfs', type: 'dir' },
    ]);
    const wd = path.join(path.dirname(file), 'wd.aci');
    makeAci(wd, [
      { name: 'manifest', data: aciManifest('example.com/dotdot-fetch-wd', { app: { exec: ['/bin/sh'], user: '0', group: '0', workingDirectory: '/srv/../../x' } }) },
      { name: 'rootfs', type: 'dir' },
    ]);
    const before = snapshot(dd.path);
    oneLineError(await dd.tspod(['fetch', file]), /^tspod: .*mp\.aci: mount point data path "\/\.\.\/x" has a "\.\." component$/);
    oneLineError(await dd.tspod(['fetch', wd]), /^tspod: .*wd\.aci: working directory "\/srv\/\.\.\/\.\.\/x" has a "\.\." component$/);
    assertUnchanged(before, dd.path, 'a refused fetch');
  });

  test('pod manifests: names and paths that would leave the pod or the app are refused', async () => {
    const canary = canaryPath();
    const dir = scratch('podman');
    const climb = `/${CLIMB}${canary.slice(1)}`;
    const app = (extra: Record<string, unknown> = {}) => ({ name: 'a', image: { id: busyboxId }, app: { exec: ['/bin/true'], user: '0', group: '0' }, ...extra });
    const pm = (apps: unknown[], volumes: unknown[] = []) => ({ acKind: 'PodManifest', acVersion: '0.8.11', apps, volumes });
    const cases: Array<[string, unknown, RegExp]> = [
      ['mount-path', pm([app({ mounts: [{ volume: 'v', path: climb }] })], [{ name: 'v', kind: 'empty' }]), /app a: mount path ".*" has a "\.\." component$/],
      ['mount-rel', pm([app({ mounts: [{ volume: 'v', path: 'data' }] })], [{ name: 'v', kind: 'empty' }]), /app a: mount path "data" is not an absolute path$/],
      ['volume-name', pm([app()], [{ name: `${CLIMB}${canary.slice(1)}`, kind: 'empty' }]), /volume name ".*" is not an AC Name/],
      ['app-name', pm([{ ...app(), name: `${CLIMB}${canary.slice(1)}` }]), /app name ".*" is not an AC Name/],
      ['workdir', pm([app({ app: { exec: ['/bin/true'], user: '0', group: '0', workingDirectory: climb } })]), /app a: working directory ".*" has a "\.\." component$/],
      ['mountpoint', pm([app({ app: { exec: ['/bin/true'], user: '0', group: '0', mountPoints: [{ name: 'm', path: climb }] } })]), /app a: mount point m path ".*" has a "\.\." component$/],
    ];
    const podsBefore = podsTree(dd.path);
    for (const [name, manifest, re] of cases) {
      const file = path.join(dir, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify(manifest));
      for (const cmd of ['prepare', 'run']) {
        const line = oneLineError(await dd.tspod([cmd, `--pod-manifest=${file}`]), re);
        assert.match(line, /^tspod: --pod-manifest ".*\.json": /, name);
      }
      assertNoCanary(canary, name);
    }
    assert.deepEqual(podsTree(dd.path), podsBefore, 'no pod');
  });

  test('--mount targets and --working-dir: `..` refused, a relative target is taken from the root', async () => {
    const canary = canaryPath();
    const climb = `/${CLIMB}${canary.slice(1)}`;
    const podsBefore = podsTree(dd.path);
    const vol = `--volume=v,kind=host,source=${scratch('vol')}`;
    for (const [args, re] of [
      [['run', vol, BUSYBOX, `--mount=volume=v,target=${climb}`, '--exec=/bin/true'], /^tspod: --mount ".*": target ".*" has a "\.\." component/],
      [['run', vol, `--mount=volume=v,target=x/../../..${canary}`, BUSYBOX, '--exec=/bin/true'], /^tspod: --mount ".*": target ".*" has a "\.\." component/],
      [['prepare', BUSYBOX, `--working-dir=${climb}`, '--exec=/bin/true'], /^tspod: --working-dir ".*" has a "\.\." component$/],
      [['prepare', BUSYBOX, '--working-dir=tmp', '--exec=/bin/true'], /^tspod: --working-dir "tmp" is not an absolute path$/],
    ] as const) {
      oneLineError(await dd.tspod([...args]), re);
      assertNoCanary(canary, args.join(' '));
    }
    assert.deepEqual(podsTree(dd.path), podsBefore, 'no pod');

    const r = await dd.tspod(['prepare', '--quiet', vol, BUSYBOX, '--name=rel', '--mount=volume=v,target=data/sub', '--exec=/bin/true']);
    assert.equal(r.code, 0, r.stderr);
    const uuid = r.stdout.trim();
    const manifest = JSON.parse((await dd.tspod(['cat-manifest', uuid])).stdout) as { apps: Array<{ mounts: Array<{ volume: string; path: string }> }> };
    assert.deepEqual(manifest.apps[0].mounts, [{ volume: 'v', path: '/data/sub' }]);
    assert.equal((await dd.tspod(['rm', uuid])).code, 0);
  });
});
