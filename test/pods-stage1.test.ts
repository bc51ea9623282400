// Choosing the stage1: the default one (bin/stage1.aci, imported on first use
// and recorded in the pod), --stage1-path, --stage1-name and --stage1-hash, and a
// refused image that is not a stage1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, REPO_ROOT, type DataDir } from './harness/index.js';
import { BUSYBOX, SKIP, ok } from './pods-util.js';

const STAGE1_ACI = path.join(REPO_ROOT, 'bin/stage1.aci');

let dd: DataDir;

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'pods-stage1');
  await ok(dd, ['fetch', BUSYBOX]);
});
after(async () => {
  if (dd) await dd.remove();
});

interface ImageRow {
  id: string;
  name: string;
}

async function images(): Promise<ImageRow[]> {
  return JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as ImageRow[];
}

/** The stage1 image a prepared pod recorded (its stage1/manifest names it). */
function podStage1Name(uuid: string): string {
  const m = JSON.parse(fs.readFileSync(path.join(dd.path, 'pods/prepared', uuid, 'stage1/manifest'), 'utf8')) as { name: string };
  return m.name;
}

describe('stage1 selection', { skip: SKIP }, () => {
  test('the default stage1 is imported once and found again by name', async () => {
    const first = (await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    assert.equal(podStage1Name(first), 'tspod/stage1');
    const stage1s = (await images()).filter((i) => i.name.startsWith('tspod/stage1'));
    assert.equal(stage1s.length, 1, JSON.stringify(stage1s));
    await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true']);
    assert.equal((await images()).filter((i) => i.name.startsWith('tspod/stage1')).length, 1, 'not imported twice');
    const run = await dd.tspod(['run-prepared', first]);
    assert.equal(run.code, 0, describeResult(run));
  });

  test('--stage1-path, --stage1-name (without a version) and --stage1-hash run the pod', async () => {
    const byPath = await dd.tspod(['run', `--stage1-path=${STAGE1_ACI}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'exit 3']);
    assert.equal(byPath.code, 3, describeResult(byPath));
    const byName = await dd.tspod(['run', '--stage1-name=tspod/stage1', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'exit 4']);
    assert.equal(byName.code, 4, describeResult(byName));
    const id = (await images()).find((i) => i.name.startsWith('tspod/stage1'))!.id;
    const byHash = await dd.tspod(['run', `--stage1-hash=${id.slice(0, 20)}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'exit 5']);
    assert.equal(byHash.code, 5, describeResult(byHash));
  });

  test('an image that is not a stage1 is refused with one line, and no pod is made', async () => {
    const busybox = (await images()).find((i) => i.name.endsWith(':busybox'))!.id;
    const before = fs.readdirSync(path.join(dd.path, 'pods/prepared')).length;
    const r = await dd.tspod(['prepare', `--stage1-hash=${busybox}`, BUSYBOX, '--exec=/bin/true']);
    assert.equal(r.code, 254, describeResult(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /is not a stage1: its manifest has no tspod\/stage1\/init annotation/);
    assert.equal(fs.readdirSync(path.join(dd.path, 'pods/prepared')).length, before);
    assert.equal(fs.readdirSync(path.join(dd.path, 'pods/prepare')).length, 0);
  });
});
