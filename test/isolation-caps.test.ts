// Capabilities (issue 10 item 1): appc's default set for root (bounding,
// permitted, effective, inheritable) and for a non-root user (bounding only),
// the capabilities-retain-set / -remove-set isolators of an image, rkt's
// --caps-retain / --caps-remove flags (which replace the image's), and
// --insecure-options=capabilities; each seen by `run` and by `enter`, which must
// get exactly the app's sets. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { busyboxAci, DEFAULT_CAPS, failsWith, SKIP, ok, podsTree, removeScratchDirs, scratchDir, withProbedPod, type Probe } from './pods-util.js';
const ZERO = '0000000000000000';
const NET_RAW = 1n << 13n;
const SYS_ADMIN = 1n << 21n;

let dd: DataDir;
let work = '';

/** NAME.aci: the busybox tree, an app that prints its capability sets, these isolators. */
const makeAci = (name: string, isolators: unknown[]): string => busyboxAci(work, `caps-${name}`, { exec: ['/bin/sh', '-c', 'grep Cap /proc/self/status'], isolators });

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-caps');
  work = scratchDir('isolation-caps');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

function hex(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}

function hostBounding(): string {
  return /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
}

/** Asserts the five sets: root gets MASK in all four, others bounding only. */
function assertSets(p: Probe, mask: string, root: boolean, who: string): void {
  const c = p.caps();
  assert.equal(c.CapBnd, mask, `${who}: CapBnd`);
  assert.equal(c.CapPrm, root ? mask : ZERO, `${who}: CapPrm`);
  assert.equal(c.CapEff, root ? mask : ZERO, `${who}: CapEff`);
  assert.equal(c.CapInh, root ? mask : ZERO, `${who}: CapInh`);
  assert.equal(c.CapAmb, ZERO, `${who}: CapAmb`);
}

/** Runs a probed pod and checks the sets through run and enter. */
async function check(opts: Parameters<typeof withProbedPod>[1], mask: string, root: boolean, who: string): Promise<void> {
  await withProbedPod(dd, opts, async (pod) => {
    assertSets(pod.run, mask, root, `${who} (run)`);
    assertSets(await pod.enter(), mask, root, `${who} (enter)`);
  });
}

const DEFAULT = BigInt(`0x${DEFAULT_CAPS}`);

describe('capability sets', { skip: SKIP }, () => {
  test('default: appc set in all four sets for root', () => check({}, DEFAULT_CAPS, true, 'root'));

  test('default: bounding set only for a non-root user', () => check({ appFlags: ['--user=1000', '--group=1000'] }, DEFAULT_CAPS, false, 'uid 1000'));

  test('image capabilities-retain-set: exactly these', async () => {
    const aci = makeAci('retain', [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_NET_RAW', 'CAP_SYS_ADMIN'] } }]);
    await check({ image: aci }, hex(NET_RAW | SYS_ADMIN), true, 'retain-set');
  });

  test('image capabilities-remove-set: the default less these', async () => {
    const aci = makeAci('remove', [{ name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_NET_RAW'] } }]);
    await check({ image: aci }, hex(DEFAULT & ~NET_RAW), true, 'remove-set');
    await check({ image: aci, appFlags: ['--user=1000'] }, hex(DEFAULT & ~NET_RAW), false, 'remove-set, uid 1000');
  });

  test('--caps-retain / --caps-remove replace the image isolator; stored in the pod manifest', async () => {
    const aci = makeAci('flags', [{ name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_CHOWN'] } }]);
    await check({ image: aci, appFlags: ['--caps-retain=net_raw,CAP_sys_admin'] }, hex(NET_RAW | SYS_ADMIN), true, '--caps-retain');
    await check({ image: aci, appFlags: ['--caps-remove=NET_RAW'] }, hex(DEFAULT & ~NET_RAW), true, '--caps-remove');
    const uuid = (await ok(dd, ['prepare', aci, '--caps-retain=NET_RAW'])).stdout.trim();
    try {
      const m = JSON.parse((await ok(dd, ['cat-manifest', uuid])).stdout);
      assert.deepEqual(m.apps[0].app.isolators, [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_NET_RAW'] } }]);
    } finally {
      await dd.tspod(['rm', uuid]);
    }
  });

  test('--insecure-options=capabilities keeps the full bounding set', async () => {
    const full = hostBounding();
    await check({ podFlags: ['--insecure-options=capabilities'] }, full, true, 'insecure');
  });
});

describe('capabilities against an attack', { skip: SKIP }, () => {
  test('mknod of the pod\'s /dev works (CAP_MKNOD is default), of a disk not (the device cgroup), and mounting a node fails (no CAP_SYS_ADMIN)', async () => {
    const r = await dd.tspod(['run', makeAci('mknod', []), '--exec=/bin/sh', '--', '-c', 'mkdir -p /tmp; mknod /tmp/null c 1 3 && echo mknod-ok; mknod /tmp/sda b 8 0 && echo SDA; mkdir -p /mnt/x; mount /tmp/null /mnt/x && echo MOUNTED || echo mount-failed']);
    assert.match(r.stdout, /^mknod-ok$/m, describeResult(r));
    assert.match(r.stderr, /mknod: \/tmp\/sda: Operation not permitted/, describeResult(r));
    assert.doesNotMatch(r.stdout, /SDA/);
    assert.match(r.stdout, /^mount-failed$/m, describeResult(r));
    assert.doesNotMatch(r.stdout, /MOUNTED/);
  });

  test('a raw socket (ping) fails after --caps-remove=NET_RAW', async () => {
    const r = await dd.tspod(['run', '--net=host', makeAci('ping', []), '--caps-remove=NET_RAW', '--exec=/bin/sh', '--', '-c', 'ping -c1 -W1 127.0.0.1; echo "rc=$?"']);
    assert.doesNotMatch(r.stdout, /^rc=0$/m, describeResult(r));
    assert.match(r.stdout + r.stderr, /permission denied|not permitted/i, describeResult(r));
  });
});

describe('bad capability names are refused', { skip: SKIP }, () => {
  test('unknown flag names, both flags, bad isolators: one line, exit 254, no pod', async () => {
    const aci = makeAci('bad', []);
    const before = podsTree(dd.path);
    failsWith(await dd.tspod(['prepare', aci, '--caps-retain=CAP_NET_RAW,CAP_BOGUS']), /--caps-retain: unknown capability "CAP_BOGUS"/);
    failsWith(await dd.tspod(['run', aci, '--caps-remove=flying']), /--caps-remove: unknown capability "flying"/);
    failsWith(await dd.tspod(['run', aci, '--caps-remove=NET_RAW', '--caps-retain=CHOWN']), /cannot be combined/);
    const badIso = makeAci('bad-iso', [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_NOPE'] } }]);
    failsWith(await dd.tspod(['prepare', badIso]), /unknown capability "CAP_NOPE"/);
    const both = makeAci('both-iso', [
      { name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_CHOWN'] } },
      { name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_KILL'] } },
    ]);
    failsWith(await dd.tspod(['prepare', both]), /only one of/);
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before.filter((p) => !p.startsWith('prepare/')), 'no pod left behind');
  });
});
