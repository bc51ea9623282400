// Rendering layers into one tree: whiteouts, opaque directories, symlinks that
// become directories, hardlinks, metadata; checked against an expected tree and
// against what a real overlayfs mount of the same layers shows.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { unpackLayer } from '../store/layers/unpack.js';
import { decompress } from '../store/layers/decompress.js';
import { hashTree } from '../store/layers/treehash.js';
import { renderLayers, visibleLayers } from '../store/layers/render.js';
import { kernel } from '../native/sys.js';

const { lxattrs } = kernel;

const ROOT = process.env.TSPOD_TEST_ROOT ?? path.resolve('test/data');
const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(name: string): string {
  fs.mkdirSync(ROOT, { recursive: true });
  const d = fs.mkdtempSync(path.join(ROOT, `render-${name}-`));
  made.push(d);
  return d;
}

interface Ent {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'fifo';
  data?: string;
  mode?: number;
  uid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

const PY_TAR = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(spec['out'], 'w', format=tarfile.PAX_FORMAT) as t:
    for e in spec['entries']:
        ti = tarfile.TarInfo(e['name'])
        kind = e.get('type', 'file')
        ti.type = types[kind]
        ti.mode = e.get('mode', 0o755 if kind == 'dir' else 0o644)
        ti.uid = e.get('uid', 0)
        ti.uname = ti.gname = ''
        ti.mtime = e.get('mtime', 1600000000)
        ti.linkname = e.get('linkname', '')
        ti.devmajor = e.get('devmajor', 0)
        ti.devminor = e.get('devminor', 0)
        if e.get('pax'):
            ti.pax_headers = e['pax']
        data = e.get('data', '').encode() if kind == 'file' else None
        if data is not None:
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

/** Unpacks a layer made of `entries` into base/<name>/rootfs; returns that rootfs. */
async function layer(base: string, name: string, entries: Ent[]): Promise<string> {
  const dir = path.join(base, name);
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  const tar = path.join(dir, 'layer.tar');
  const r = spawnSync('python3', ['-c', PY_TAR], { input: JSON.stringify({ out: tar, entries }) });
  if (r.status !== 0) throw new Error(`python tar writer failed: ${r.stderr.toString()}`);
  await unpackLayer(fs.createReadStream(tar), rootfs, { what: `layer ${name}` });
  return rootfs;
}

interface Listed {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  data: string;
  xattrs: string;
}

/** path → what it is, for comparing trees (times and inode numbers left out). */
function list(root: string): Map<string, Listed> {
  const out = new Map<string, Listed>();
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(abs);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isFIFO() ? 'fifo' : 'other';
    let data = '';
    if (type === 'file') data = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 12);
    if (type === 'symlink') data = fs.readlinkSync(abs);
    if (type === 'char') data = String(st.rdev);
    const xattrs = lxattrs(abs)
      .map(([n, v]) => `${n}=${v.toString('hex')}`)
      .sort()
      .join(',');
    out.set(rel || '/', { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, data, xattrs });
    if (type === 'dir') for (const n of fs.readdirSync(abs)) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

function content(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);
}

describe('renderLayers', () => {
  test('applies whiteouts, opaque directories and overrides like overlayfs', async (t) => {
    const base = tmpdir('merge');
    const l1 = await layer(base, 'l1', [
      { name: 'a/', type: 'dir' },
      { name: 'a/f1', data: 'f1' },
      { name: 'a/f2', data: 'f2' },
      { name: 'a/sub/g', data: 'g' },
      { name: 'lnk', type: 'symlink', linkname: 'a' },
      { name: 'd/x', data: 'x' },
      { name: 'd/y', data: 'y' },
      { name: 'e', data: 'e' },
      { name: 'keep', data: 'old', mode: 0o600, uid: 3 },
      { name: 'dev', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'h1', data: 'hl' },
      { name: 'h2', type: 'link', linkname: 'h1' },
      { name: 'lib/libc.so', data: 'libc' },
      { name: 'xa', data: 'xa', pax: { 'SCHILY.xattr.user.attr': '1' } },
      { name: 'suid', data: 's', mode: 0o4755, uid: 0 },
    ]);
    const l2 = await layer(base, 'l2', [
      { name: 'a/.wh.f1' },
      { name: '.wh.e' },
      { name: 'd/.wh..wh..opq' },
      { name: 'd/z', data: 'z' },
      { name: 'lnk/', type: 'dir', mode: 0o750 },
      { name: 'lnk/inner', data: 'inner' },
      { name: 'a/sub/h', data: 'h' },
      { name: 'keep', data: 'new', mode: 0o644, uid: 4, mtime: 1500000000 },
      { name: 'newlink', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'hl1', data: 'same inode' },
      { name: 'hl2', type: 'link', linkname: 'hl1' },
      { name: '.wh.lib' },
      { name: 'lib/new', data: 'new lib' },
    ]);
    const l3 = await layer(base, 'l3', [
      { name: '.wh.h2' },
      { name: 'a/sub/.wh..wh..opq' },
      { name: 'd/w', data: 'w' },
      { name: 'dev2', type: 'fifo', mode: 0o600 },
    ]);
    const dest = path.join(base, 'dest');
    await renderLayers([l1, l2, l3], dest);
    const got = list(dest);

    const f = (data: string, mode = 0o644, uid = 0, xattrs = '') => ({ type: 'file', mode, uid, gid: 0, data: content(data), xattrs });
    const d = (mode = 0o755) => ({ type: 'dir', mode, uid: 0, gid: 0, data: '', xattrs: '' });
    const rootSt = fs.lstatSync(l3);
    const expected = new Map<string, Listed>([
      ['/', { ...d(rootSt.mode & 0o7777), uid: rootSt.uid, gid: rootSt.gid }],
      ['a', d()],
      ['a/f2', f('f2')],
      ['a/sub', d()],
      ['d', d()],
      ['d/w', f('w')],
      ['d/z', f('z')],
      ['dev', { type: 'char', mode: 0o666, uid: 0, gid: 0, data: String(0x103), xattrs: '' }],
      ['dev2', { type: 'fifo', mode: 0o600, uid: 0, gid: 0, data: '', xattrs: '' }],
      ['h1', f('hl')],
      ['hl1', f('same inode')],
      ['hl2', f('same inode')],
      ['keep', f('new', 0o644, 4)],
      ['lib', d()],
      ['lib/new', f('new lib')],
      ['lnk', d(0o750)],
      ['lnk/inner', f('inner')],
      ['newlink', { type: 'symlink', mode: 0o777, uid: 0, gid: 0, data: '/etc/passwd', xattrs: '' }],
      ['suid', f('s', 0o4755)],
      ['xa', f('xa', 0o644, 0, `user.attr=${Buffer.from('1').toString('hex')}`)],
    ]);
    assert.deepEqual(
      [...got].sort(([a], [b]) => a.localeCompare(b)),
      [...expected].sort(([a], [b]) => a.localeCompare(b)),
    );

    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    assert.equal(st('hl1').ino, st('hl2').ino, 'hardlinks stay hardlinks');
    assert.equal(st('keep').mtimeMs, 1500000000000);
    assert.equal(st('newlink').mtimeMs, 1600000000000);
    // (times go through a double in Node's utimes: microsecond precision)
    assert.ok(Math.abs(st('d').mtimeMs - fs.lstatSync(path.join(l3, 'd')).mtimeMs) < 0.01, 'directory time from the top layer, set last');
    assert.equal(st('lnk').mtimeMs, 1600000000000);

    // The same layers through the kernel's overlayfs, when it can be mounted here.
    const mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${l3}:${l2}:${l1}`, mnt]);
    if (m.status !== 0) {
      t.skip(`overlayfs not mountable here: ${m.stderr}`);
      return;
    }
    try {
      assert.deepEqual(
        [...list(mnt)].sort(([a], [b]) => a.localeCompare(b)),
        [...got].sort(([a], [b]) => a.localeCompare(b)),
        'render matches the overlay mount',
      );
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('a layer root made opaque hides everything below it', async () => {
    const base = tmpdir('root-opaque');
    const l1 = await layer(base, 'l1', [{ name: 'old', data: 'old' }]);
    const l2 = await layer(base, 'l2', [{ name: '.wh..wh..opq' }, { name: 'new', data: 'new' }]);
    const l3 = await layer(base, 'l3', [{ name: 'top', data: 'top' }]);
    assert.deepEqual(visibleLayers([l1, l2, l3]), [l2, l3]);
    const dest = path.join(base, 'dest');
    await renderLayers([l1, l2, l3], dest);
    assert.deepEqual(fs.readdirSync(dest).sort(), ['new', 'top']);
    assert.deepEqual(lxattrs(dest), []);
  });

  test('symlinks of lower layers are never followed', async () => {
    const base = tmpdir('nofollow');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'secret');
    const l1 = await layer(base, 'l1', [
      { name: 'etc', type: 'symlink', linkname: outside },
      { name: 'rel', type: 'symlink', linkname: '../../outside' },
    ]);
    const l2 = await layer(base, 'l2', [{ name: 'etc/passwd', data: 'root:x:0:0' }]);
    const dest = path.join(base, 'dest');
    await renderLayers([l1, l2], dest);
    assert.ok(fs.lstatSync(path.join(dest, 'etc')).isDirectory());
    assert.deepEqual(fs.readdirSync(path.join(dest, 'etc')), ['passwd']);
    assert.equal(fs.readlinkSync(path.join(dest, 'rel')), '../../outside');
    assert.deepEqual(fs.readdirSync(outside), ['secret']);
  });

  test('missing and non-directory layer paths (sub-path rendering)', async () => {
    const base = tmpdir('subpath');
    const l1 = await layer(base, 'l1', [{ name: 'vol/a', data: 'a' }]);
    const l2 = await layer(base, 'l2', [{ name: 'vol', data: 'now a file' }]);
    const l3 = await layer(base, 'l3', [{ name: 'other', data: 'o' }]);
    const dest = path.join(base, 'dest');
    await renderLayers([path.join(l1, 'vol'), path.join(l2, 'vol'), path.join(l3, 'vol')], dest);
    assert.deepEqual(fs.readdirSync(dest), [], 'a file in a higher layer hides the directory below');
    const dest2 = path.join(base, 'dest2');
    await renderLayers([path.join(l1, 'vol'), path.join(l3, 'vol')], dest2);
    assert.deepEqual(fs.readdirSync(dest2), ['a']);
  });

  // Differential: the standard fixtures (OCI layout built with umoci, compared
  // with `umoci unpack`'s rootfs) unpacked and rendered by tspod.
  test('fixture images render like umoci unpacks them', async (t) => {
    const fixtures = path.resolve('fixtures/out');
    const layout = path.join(fixtures, 'oci');
    if (!fs.existsSync(path.join(layout, 'index.json'))) {
      t.skip('fixtures not built (make test builds them)');
      return;
    }
    const blob = (digest: string) => path.join(layout, 'blobs', ...digest.split(':'));
    const json = (digest: string) => JSON.parse(fs.readFileSync(blob(digest), 'utf8'));
    interface Desc {
      digest: string;
      annotations?: Record<string, string>;
      platform?: { architecture: string };
    }
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
    let checked = 0;
    for (const desc of index.manifests) {
      const tag = desc.annotations?.['org.opencontainers.image.ref.name'];
      const ref = path.join(fixtures, 'ref', tag ?? '', 'rootfs');
      if (!tag || !fs.existsSync(ref)) continue;
      let manifest = json(desc.digest) as { layers?: Desc[]; manifests?: Desc[] };
      if (manifest.manifests) {
        const amd64 = manifest.manifests.find((m) => m.platform?.architecture === 'amd64');
        if (!amd64) continue;
        manifest = json(amd64.digest);
      }
      const base = tmpdir(`fixture-${tag}`);
      const layers: string[] = [];
      for (const [i, l] of (manifest.layers ?? []).entries()) {
        const rootfs = path.join(base, `l${i}`);
        fs.mkdirSync(rootfs);
        const r = await unpackLayer(decompress(fs.createReadStream(blob(l.digest)), 'auto'), rootfs, {
          what: `${tag} layer ${i}`,
          lowerRootfs: [...layers].reverse(),
        });
        assert.equal(r.treeHash, await hashTree(rootfs), `${tag} layer ${i}`);
        layers.push(rootfs);
      }
      const dest = path.join(base, 'dest');
      await renderLayers(layers, dest);
      const got = list(dest);
      const want = list(ref);
      got.delete('/');
      want.delete('/');
      assert.deepEqual(
        [...got].sort(([a], [b]) => a.localeCompare(b)),
        [...want].sort(([a], [b]) => a.localeCompare(b)),
        `${tag}: tspod's render differs from umoci's unpack`,
      );
      checked++;
    }
    assert.ok(checked > 0, 'no fixture was compared');
  });
});
