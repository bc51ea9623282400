// Namespaces and what lives in them (issue 10 items 3, 4 and 7): --ipc (auto and
// private: the pod's own IPC namespace; parent: the host's), through run,
// run-prepared and enter; bad values refused with one line, exit 254, no pod.
// Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeDataDir, type DataDir } from './harness/index.js';
import { BUSYBOX, failsWith, hostNs, ok, podsTree, removeScratchDirs, SKIP, withProbedPod } from './pods-util.js';

let dd: DataDir;

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-ns');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

describe('--ipc', { skip: SKIP }, () => {
  for (const [flags, own] of [[[], true], [['--ipc=auto'], true], [['--ipc=private'], true], [['--ipc=parent'], false]] as const) {
    test(`${flags.join(' ') || 'default'}: ${own ? 'an IPC namespace of its own' : 'the host’s IPC namespace'} (run and enter)`, async () => {
      await withProbedPod(dd, { podFlags: [...flags] }, async (pod) => {
        for (const [how, probe] of [['run', pod.run], ['enter', await pod.enter()]] as const) {
          if (own) assert.notEqual(probe.get('ns.ipc'), hostNs('ipc'), how);
          else assert.equal(probe.get('ns.ipc'), hostNs('ipc'), how);
          assert.notEqual(probe.get('ns.uts'), hostNs('uts'), `${how}: the other namespaces stay the pod's`);
        }
      });
    });
  }

  test('run-prepared --ipc=parent overrides what prepare recorded', async () => {
    const prep = await ok(dd, ['prepare', '--quiet', '--ipc=private', BUSYBOX, '--exec', '/bin/sh', '--', '-c', 'busybox readlink /proc/self/ns/ipc', '---']);
    const uuid = prep.stdout.trim();
    const r = await ok(dd, ['run-prepared', '--ipc=parent', uuid]);
    assert.equal(r.stdout.trim(), hostNs('ipc'));
  });

  test('a bad value: one line, exit 254, no pod', async () => {
    const before = podsTree(dd.path);
    for (const cmd of ['run', 'prepare']) {
      failsWith(await dd.tspod([cmd, '--ipc=host', BUSYBOX, '--exec', '/bin/true']), /^--ipc=host: want auto, private or parent$/);
    }
    assert.deepEqual(podsTree(dd.path), before);
  });
});
