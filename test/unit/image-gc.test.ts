// Image gc's roots from the pods (stage0/image-gc.ts), without root: the images of
// live pods (embryo, prepare, prepared, run) and the layers of every pod that has
// a directory; a pod without its store-refs file (being made, or going) adds none.
// The store's side (store/gc.ts keeps exactly the roots handed in) is tested on a
// real store in test/store-images.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { podGcRoots, type PodStoreRefs } from '../../stage0/image-gc.js';
import { PodsDir, STATE_DIRS } from '../../stage0/pods.js';
import { POD_FILES } from '../../stage1/contract/pod.js';
import { scratch } from './util.js';

test('roots: live pods keep their images; every pod on disk keeps its layers', () => {
  const pods = new PodsDir(path.join(scratch(), 'pods'));
  pods.ensureLayout();
  STATE_DIRS.forEach((state, i) => {
    const dir = pods.podDir(state, `00000000-0000-4000-8000-00000000000${i}`);
    fs.mkdirSync(dir);
    const refs: PodStoreRefs = { images: [`image-${state}`], layers: [`layer-${state}`] };
    fs.writeFileSync(path.join(dir, POD_FILES.storeRefs), JSON.stringify(refs));
  });
  // Pods still being made: no file yet, or one cut short.
  fs.mkdirSync(pods.podDir('prepare', '00000000-0000-4000-8000-00000000000a'));
  const cut = pods.podDir('embryo', '00000000-0000-4000-8000-00000000000b');
  fs.mkdirSync(cut);
  fs.writeFileSync(path.join(cut, POD_FILES.storeRefs), '{"images": ["x"');

  const roots = podGcRoots(pods);
  assert.deepEqual([...roots.images].sort(), ['image-embryo', 'image-prepare', 'image-prepared', 'image-run']);
  assert.deepEqual([...roots.layers].sort(), STATE_DIRS.map((s) => `layer-${s}`).sort());
});

test('roots of an empty or missing pods directory are empty', () => {
  const roots = podGcRoots(new PodsDir(path.join(scratch(), 'pods')));
  assert.equal(roots.images.size, 0);
  assert.equal(roots.layers.size, 0);
});

test('a prepared, running or exited pod whose refs are missing or damaged stops the collection, naming the file', () => {
  for (const state of ['prepared', 'run', 'exited-garbage'] as const) {
    for (const content of [undefined, '{"images": ["x"', '{"images": "x", "layers": []}']) {
      const pods = new PodsDir(path.join(scratch(), 'pods'));
      pods.ensureLayout();
      const dir = pods.podDir(state, '00000000-0000-4000-8000-0000000000c1');
      fs.mkdirSync(dir);
      if (content !== undefined) fs.writeFileSync(path.join(dir, POD_FILES.storeRefs), content);
      assert.throws(
        () => podGcRoots(pods),
        (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadFormat && e.message.includes(path.join(dir, POD_FILES.storeRefs)),
        `${state} with ${content ?? 'no file'}`,
      );
    }
  }
});
