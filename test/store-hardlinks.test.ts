// Hardlinks whose target is only in a lower layer. The importer unpacks an image's
// layers concurrently, each into an empty directory, so such a layer first fails;
// it is unpacked again once the layers below it are there (store/importer.ts), and
// the link becomes a copy of the lower file. Layouts are written by python3's tarfile.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeDataDir, type DataDir } from './harness/index.js';
import {
  assertUnchanged,
  fetchedId,
  incompleteLayers,
  layerIds,
  makeLayout,
  oneLineError,
  ok,
  scratchLeft,
  snapshot,
  suiteHost,
  tempDir,
  type TarEntry,
} from './store-util.js';

/** path → "d mode" | "f mode content" | "l target", for everything under root. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of (fs.readdirSync(root, { recursive: true }) as string[]).sort()) {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) out[rel] = `d ${mode}`;
    else if (st.isSymbolicLink()) out[rel] = `l ${fs.readlinkSync(p)}`;
    else if (st.isFile()) out[rel] = `f ${mode} ${fs.readFileSync(p, 'utf8')}`;
    else out[rel] = `? ${st.mode.toString(8)}`;
  }
  return out;
}

describe('hardlinks into lower layers', () => {
  const host = suiteHost();
  after(() => host.run());

  async function fetchAndRender(t: Parameters<typeof tempDir>[0], dd: DataDir, layers: TarEntry[][]): Promise<Record<string, string>> {
    const layout = tempDir(t, 'layout');
    makeLayout(layout, 'img', layers);
    const r = await dd.tspod(['fetch', `oci:${layout}:img`]);
    const id = fetchedId(r);
    assert.match(r.stderr, /is in a lower layer; stored as a copy/, 'the copy is reported as a warning');
    const out = path.join(tempDir(t, 'render'), 'rootfs');
    ok(await dd.tspod(['image', 'render', '--rootfs-only', id, out]));
    ok(await dd.tspod(['image', 'verify', id]));
    assert.deepEqual(incompleteLayers(dd.path), []);
    assert.deepEqual(scratchLeft(dd.path), []);
    return tree(out);
  }

  test('a file in the lower layer, a hardlink to it in the upper: fetch succeeds and renders both', async (t) => {
    const dd = makeDataDir(t, 'hl-two');
    const got = await fetchAndRender(t, dd, [
      [{ name: 'etc', type: 'dir' }, { name: 'etc/data', data: 'hello\n', mode: 0o640 }],
      [{ name: 'etc', type: 'dir' }, { name: 'etc/link', type: 'hardlink', link: 'etc/data' }, { name: 'etc/own', data: 'own\n' }],
    ]);
    assert.deepEqual(got, {
      etc: 'd 755',
      'etc/data': 'f 640 hello\n',
      'etc/link': 'f 640 hello\n',
      'etc/own': 'f 644 own\n',
    });
  });

  test('a chain over three layers: each link finds the nearest layer that has its target', async (t) => {
    const dd = makeDataDir(t, 'hl-three');
    const got = await fetchAndRender(t, dd, [
      [{ name: 'a', data: 'from layer 0\n' }, { name: 'b', data: 'b of layer 0\n' }],
      [{ name: 'b', data: 'b of layer 1\n' }, { name: 'c', type: 'hardlink', link: 'a' }],
      [{ name: 'd', type: 'hardlink', link: 'c' }, { name: 'e', type: 'hardlink', link: 'b' }],
    ]);
    assert.deepEqual(got, {
      a: 'f 644 from layer 0\n',
      b: 'f 644 b of layer 1\n',
      c: 'f 644 from layer 0\n',
      d: 'f 644 from layer 0\n',
      e: 'f 644 b of layer 1\n',
    });
  });

  test('the lower layer already in the store (from another image)', async (t) => {
    const dd = makeDataDir(t, 'hl-stored');
    const base: TarEntry[] = [{ name: 'data', data: 'base\n' }];
    const layout = tempDir(t, 'base');
    makeLayout(layout, 'base', [base]);
    fetchedId(await dd.tspod(['fetch', `oci:${layout}:base`]));
    const before = layerIds(dd.path);
    const got = await fetchAndRender(t, dd, [base, [{ name: 'link', type: 'hardlink', link: 'data' }]]);
    assert.deepEqual(got, { data: 'f 644 base\n', link: 'f 644 base\n' });
    assert.equal(layerIds(dd.path).length, before.length + 1, 'the base layer is shared');
  });

  test('a target missing everywhere, or deleted by a whiteout in between: one line, nothing stored', async (t) => {
    const dd = makeDataDir(t, 'hl-missing');
    // Something in the store first, so that "unchanged" means more than "not created".
    const base = tempDir(t, 'base');
    makeLayout(base, 'base', [[{ name: 'data', data: 'x\n' }]]);
    fetchedId(await dd.tspod(['fetch', `oci:${base}:base`]));
    const cases: TarEntry[][][] = [
      [[{ name: 'data', data: 'x\n' }], [{ name: 'link', type: 'hardlink', link: 'nope' }]],
      [[{ name: 'data', data: 'x\n' }], [{ name: '.wh.data', data: '' }], [{ name: 'link', type: 'hardlink', link: 'data' }]],
      [[{ name: 'link', type: 'hardlink', link: 'nope' }]],
    ];
    for (const [i, layers] of cases.entries()) {
      const layout = tempDir(t, `missing-${i}`);
      makeLayout(layout, 'img', layers);
      const before = snapshot(dd.path);
      const r = await dd.tspod(['fetch', `oci:${layout}:img`]);
      oneLineError(r, /hardlink "link" target "(nope|data)" does not exist in this layer/);
      assertUnchanged(before, dd.path, `case ${i}`);
    }
  });
});
