// rkt's pod semantics where tspod used to differ (issue 7, "Pods" and "Paths
// and users"): pod volumes bound to an app's mount points by name, image
// isolators never silently ignored, `root` without /etc/passwd, and mount
// targets behind dangling symlinks created inside the app. The images are ACIs
// made with GNU tar from the busybox fixture's tree. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeDataDir, type DataDir } from './harness/index.js';
import { busyboxAci, failsWith, SKIP, ok, podsTree, removeScratchDirs, scratchDir } from './pods-util.js';

/** NAME.aci in this file's scratch directory (see busyboxAci). */
const makeAci = (name: string, app: Record<string, unknown>, opts?: Parameters<typeof busyboxAci>[3]): string => busyboxAci(work, `compat-${name}`, app, opts);

let dd: DataDir;
let work = '';

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'compat-pods');
  work = scratchDir('compat-pods');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

async function imageId(file: string): Promise<string> {
  const r = await ok(dd, ['fetch', '--full', file]);
  return r.stdout.trim();
}

describe('pod volumes bind to mount points by name', { skip: SKIP }, () => {
  const script = 'echo w >/data/from-app && echo data-rw; echo w >/ro/x 2>/dev/null && echo ro-rw || echo ro-ro; echo w >/rw/x 2>/dev/null && echo rw-rw || echo rw-ro';
  const mountPoints = [
    { name: 'data', path: '/data' },
    { name: 'ro', path: '/ro', readOnly: true },
    { name: 'rw', path: '/rw', readOnly: true },
  ];

  test('--pod-manifest: a volume named like a mount point is mounted there, readOnly from the volume, else the mount point', async () => {
    const aci = makeAci('mountpoints', { exec: ['/bin/sh', '-c', script], mountPoints });
    const id = await imageId(aci);
    const data = scratchDir('mp-data');
    const ro = scratchDir('mp-ro');
    const rw = scratchDir('mp-rw');
    const manifest = path.join(work, 'pod-mountpoints.json');
    fs.writeFileSync(
      manifest,
      JSON.stringify({
        acKind: 'PodManifest',
        acVersion: '0.8.11',
        apps: [{ name: 'app', image: { id } }],
        volumes: [
          { name: 'data', kind: 'host', source: data },
          { name: 'ro', kind: 'host', source: ro },
          { name: 'rw', kind: 'host', source: rw, readOnly: false },
        ],
      }),
    );
    const r = await ok(dd, ['run', `--pod-manifest=${manifest}`]);
    assert.deepEqual(r.stdout.trim().split('\n'), ['data-rw', 'ro-ro', 'rw-rw']);
    assert.equal(fs.readFileSync(path.join(data, 'from-app'), 'utf8'), 'w\n');
    assert.deepEqual(fs.readdirSync(ro), []);
    assert.equal(fs.readFileSync(path.join(rw, 'x'), 'utf8'), 'w\n');
  });

  test('the command line: --volume with a mount point name needs no --mount', async () => {
    const aci = makeAci('mountpoints-cli', { exec: ['/bin/sh', '-c', script], mountPoints });
    const data = scratchDir('mp-cli-data');
    const ro = scratchDir('mp-cli-ro');
    const rw = scratchDir('mp-cli-rw');
    const r = await ok(dd, [
      'run',
      `--volume=data,kind=host,source=${data}`,
      `--volume=ro,kind=host,source=${ro}`,
      `--volume=rw,kind=host,source=${rw},readOnly=false`,
      aci,
    ]);
    assert.deepEqual(r.stdout.trim().split('\n'), ['data-rw', 'ro-ro', 'rw-rw']);
    assert.equal(fs.readFileSync(path.join(data, 'from-app'), 'utf8'), 'w\n');
  });

  test('explicit mounts come first; a mount point without a volume gets an empty one', async () => {
    const aci = makeAci('mountpoints-explicit', { exec: ['/bin/sh', '-c', 'ls -A /data; echo end'], mountPoints: [{ name: 'data', path: '/data' }] });
    const other = scratchDir('mp-other');
    fs.writeFileSync(path.join(other, 'other-file'), '');
    const data = scratchDir('mp-unused');
    fs.writeFileSync(path.join(data, 'data-file'), '');
    // --mount names another volume at the mount point's path: that one wins.
    const r = await ok(dd, ['run', `--volume=data,kind=host,source=${data}`, `--volume=other,kind=host,source=${other}`, aci, '--mount=volume=other,target=/data']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['other-file', 'end']);
    const empty = await ok(dd, ['run', aci]);
    assert.deepEqual(empty.stdout.trim().split('\n'), ['end']);
  });
});

describe('image isolators are never silently ignored', { skip: SKIP }, () => {
  for (const iso of [
    { name: 'resource/network-bandwidth', value: { limit: '1G' } },
    { name: 'resource/block-iops', value: { limit: '500' } },
  ]) {
    test(`${iso.name}: prepare refuses it by name; --insecure-options=isolators runs anyway`, async () => {
      const aci = makeAci(`iso-${iso.name.replace(/\W+/g, '-')}`, { exec: ['/bin/true'], isolators: [iso] });
      const before = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
      failsWith(await dd.tspod(['prepare', aci]), new RegExp(`isolator "${iso.name}" is not applied by this version of tspod`));
      failsWith(await dd.tspod(['run', aci]), new RegExp(`isolator "${iso.name}" is not applied`));
      assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before, 'no pod left behind');
      const r = await ok(dd, ['run', '--insecure-options=isolators', aci]);
      assert.match(r.stderr, new RegExp(`isolator "${iso.name}" is not applied`), 'a warning names it');
    });
  }

  test('a pod manifest app with an isolator is refused the same way', async () => {
    const id = await imageId(makeAci('iso-none', { exec: ['/bin/true'] }));
    const manifest = path.join(work, 'pod-iso.json');
    fs.writeFileSync(
      manifest,
      JSON.stringify({
        acKind: 'PodManifest',
        acVersion: '0.8.11',
        apps: [{ name: 'app', image: { id }, app: { exec: ['/bin/true'], user: '0', group: '0', isolators: [{ name: 'resource/network-bandwidth', value: { limit: '1G' } }] } }],
      }),
    );
    failsWith(await dd.tspod(['run', `--pod-manifest=${manifest}`]), /app app: isolator "resource\/network-bandwidth" is not applied/);
    await ok(dd, ['run', '--insecure-options=isolators', `--pod-manifest=${manifest}`]);
  });

  test('resource/memory, resource/cpu and os/linux/cpu-shares are applied (cgroups), not refused', async () => {
    const aci = makeAci('iso-resources', {
      exec: ['/bin/true'],
      isolators: [
        { name: 'resource/memory', value: { limit: '1G' } },
        { name: 'resource/cpu', value: { limit: '500m' } },
        { name: 'os/linux/cpu-shares', value: 1024 },
      ],
    });
    const r = await ok(dd, ['run', aci]);
    assert.doesNotMatch(r.stderr, /is not applied/);
  });

  test('the capability sets and oom-score-adj are applied, not refused', async () => {
    const aci = makeAci('iso-nnp-caps', {
      exec: ['/bin/sh', '-c', 'grep CapBnd /proc/self/status; cat /proc/self/oom_score_adj'],
      isolators: [
        { name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_NET_RAW'] } },
        { name: 'os/linux/oom-score-adj', value: 100 },
      ],
    });
    const r0 = await ok(dd, ['run', aci]);
    assert.match(r0.stdout, /^CapBnd:\s+00000000a80405fb$/m, 'capabilities-remove-set is applied, not refused');
    assert.match(r0.stdout, /^100$/m, 'oom-score-adj is applied, not refused');
  });

  test('os/linux/no-new-privileges is applied, not refused', async () => {
    const aci = makeAci('iso-nnp', { exec: ['/bin/sh', '-c', 'grep NoNewPrivs /proc/self/status'], isolators: [{ name: 'os/linux/no-new-privileges', value: true }] });
    const r = await ok(dd, ['run', aci]);
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m);
  });
});

describe('users and paths', { skip: SKIP }, () => {
  test('user and group "root" work in an image without /etc/passwd or /etc/group', async () => {
    const aci = makeAci('no-etc', { exec: ['/bin/sh', '-c', 'echo "$(id -u):$(id -g)"'], user: 'root', group: 'root' }, { drop: ['etc'] });
    const r = await ok(dd, ['run', aci]);
    assert.equal(r.stdout.trim(), '0:0');
    const r2 = await ok(dd, ['run', makeAci('no-etc-cli', { exec: ['/bin/sh', '-c', 'echo "$(id -u):$(id -g)"'] }, { drop: ['etc'] }), '--user=root', '--group=root']);
    assert.equal(r2.stdout.trim(), '0:0');
  });

  test('a mount target behind a dangling absolute symlink is created inside the app, never on the host', async () => {
    assert.ok(!fs.existsSync('/target'), 'the host has no /target (the test would not see a write there)');
    const aci = makeAci('dangling', { exec: ['/bin/sh', '-c', 'cat /data/in-volume; ls -d /target/dir'] }, { add: (root) => fs.symlinkSync('/target/dir', path.join(root, 'data')) });
    const vol = scratchDir('dangling-vol');
    fs.writeFileSync(path.join(vol, 'in-volume'), 'seen\n');
    const r = await ok(dd, ['run', `--volume=v,kind=host,source=${vol}`, aci, '--mount=volume=v,target=/data']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['seen', '/target/dir']);
    assert.ok(!fs.existsSync('/target'), 'nothing was created on the host');
  });
});
