// Choosing the stage1: the default one (bin/stage1.aci, imported on first use
// and recorded in the pod), --stage1-path, --stage1-name and --stage1-hash, and
// refused images: one that is not a stage1, and stage1s that speak another
// interface version or declare none.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, REPO_ROOT, type DataDir } from './harness/index.js';
import { makeTempDir } from './harness/paths.js';
import { BUSYBOX, SKIP, ok } from './pods-util.js';
import { aciManifest, makeAci } from './store-util.js';
import { STAGE1_ANNOTATIONS, STAGE1_INTERFACE_VERSION } from '../stage1/contract/pod.js';

const STAGE1_ACI = path.join(REPO_ROOT, 'bin/stage1.aci');

let dd: DataDir;
let scratch: string;

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'pods-stage1');
  scratch = makeTempDir('pods-stage1');
  await ok(dd, ['fetch', BUSYBOX]);
});
after(async () => {
  if (dd) await dd.remove();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/**
 * A stage1 ACI of our own making: /init, /enter and /gc that only say they ran
 * (they must never be run), and the given interface-version annotation (none if
 * undefined).
 */
function craftedStage1(name: string, interfaceVersion: string | undefined): string {
  const file = path.join(scratch, `${name}.aci`);
  const script = '#!/bin/sh\necho crafted stage1 ran >&2\nexit 99\n';
  const annotations = [
    { name: STAGE1_ANNOTATIONS.init, value: '/init' },
    { name: STAGE1_ANNOTATIONS.enter, value: '/enter' },
    { name: STAGE1_ANNOTATIONS.gc, value: '/gc' },
    ...(interfaceVersion === undefined ? [] : [{ name: STAGE1_ANNOTATIONS.interfaceVersion, value: interfaceVersion }]),
  ];
  makeAci(file, [
    { name: 'manifest', data: aciManifest(`example.com/${name}`, { app: undefined, annotations }) },
    { name: 'rootfs', type: 'dir', mode: 0o755 },
    ...['init', 'enter', 'gc'].map((e) => ({ name: `rootfs/${e}`, data: script, mode: 0o755 })),
  ]);
  return file;
}

function podCount(): number {
  return ['embryo', 'prepare', 'prepared', 'run'].reduce((n, s) => {
    const d = path.join(dd.path, 'pods', s);
    return n + (fs.existsSync(d) ? fs.readdirSync(d).length : 0);
  }, 0);
}

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

  test('a stage1 that speaks another interface version is refused with one line naming both, and no pod is made', async () => {
    const before = podCount();
    for (const [name, version, found] of [
      ['stage1-v2', '2', /speaks stage1 interface version "2"/],
      ['stage1-vx', 'one', /speaks stage1 interface version "one"/],
      ['stage1-none', undefined, /declares no interface version \(tspod\/stage1\/interface-version\)/],
    ] as const) {
      for (const cmd of ['prepare', 'run']) {
        const r = await dd.tspod([cmd, `--stage1-path=${craftedStage1(name, version)}`, BUSYBOX, '--exec=/bin/true']);
        assert.equal(r.code, 254, `${cmd} ${name}: ${describeResult(r)}`);
        // rkt's "using image from file" note, then the one line of the error.
        const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('tspod: using image from file '));
        assert.equal(lines.length, 1, r.stderr);
        assert.match(r.stderr, found);
        assert.match(r.stderr, new RegExp(`this tspod speaks version ${STAGE1_INTERFACE_VERSION}\\b`));
        assert.doesNotMatch(r.stderr, /crafted stage1 ran/);
        assert.equal(podCount(), before, `${cmd} ${name} left a pod`);
      }
    }
  });

  test('run-prepared refuses a prepared pod whose recorded stage1 speaks another version, and leaves it prepared', async () => {
    const uuid = (await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    const file = path.join(dd.path, 'pods/prepared', uuid, 'stage1/manifest');
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { annotations: Array<{ name: string; value: string }> };
    m.annotations.find((a) => a.name === STAGE1_ANNOTATIONS.interfaceVersion)!.value = '7';
    fs.writeFileSync(file, JSON.stringify(m));
    const r = await dd.tspod(['run-prepared', uuid]);
    assert.equal(r.code, 254, describeResult(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /the pod's stage1 tspod\/stage1 speaks stage1 interface version "7"; this tspod speaks version 1/);
    const status = await ok(dd, ['status', uuid]);
    assert.match(status.stdout, /^state=prepared$/m);
    await ok(dd, ['rm', uuid]);
  });
});
