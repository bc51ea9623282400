// Namespaces and what lives in them (issue 10 items 3, 4 and 7): --ipc (auto and
// private: the pod's own IPC namespace; parent: the host's), through run,
// run-prepared and enter; the os/unix/sysctl isolator and --sysctl (namespaced
// sysctls written in the pod's namespaces, the host's values untouched; the others,
// and those of a namespace the pod shares with the host, refused); --device (a host
// device node bound into one app's /dev, read and written there, shown by
// cat-manifest, seen through enter, not in the other app; its letters and the
// device cgroup: isolation-devices.test.ts); bad values refused with
// one line, exit 254, no pod. Needs root (and losetup for --device).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { BUSYBOX, busyboxAci, failsWith, hostNs, ok, podsTree, removeScratchDirs, scratchDir, SKIP, withProbedPod } from './pods-util.js';

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
        const st = JSON.parse((await ok(dd, ['status', '--format=json', pod.uuid])).stdout) as { ipc?: string };
        assert.equal(st.ipc, own ? 'private' : 'parent', 'status --format=json says which');
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

const hostSysctl = (name: string) => fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
const SYSCTL_PROBE = ['net.ipv4.ip_forward', 'net.ipv4.ping_group_range', 'kernel.shmmax', 'kernel.msgmax', 'fs.mqueue.msg_max', 'kernel.domainname']
  .map((n) => `p "sysctl.${n}" "$(cat /proc/sys/${n.replace(/\./g, '/')})"`)
  .join('\n');

describe('os/unix/sysctl', { skip: SKIP }, () => {
  const names = ['net.ipv4.ip_forward', 'kernel.shmmax', 'kernel.msgmax', 'fs.mqueue.msg_max', 'kernel.domainname'];

  test('the image’s and --sysctl’s namespaced sysctls are set in the pod (run and enter), the host’s stay', async () => {
    const hostBefore = names.map(hostSysctl);
    const dir = scratchDir('sysctl-aci');
    const aci = busyboxAci(dir, 'sysctl', {
      exec: ['/bin/true'],
      isolators: [{ name: 'os/unix/sysctl', value: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': 12345678, 'fs/mqueue/msg_max': '20', 'kernel.domainname': 'pods.example' } }],
    });
    await withProbedPod(
      dd,
      { image: aci, podFlags: ['--insecure-options=image', '--net=none', '--sysctl=kernel.msgmax=9000'], extra: SYSCTL_PROBE },
      async (pod) => {
        for (const [how, probe] of [['run', pod.run], ['enter', await pod.enter(undefined, SYSCTL_PROBE)]] as const) {
          assert.equal(probe.get('sysctl.net.ipv4.ip_forward'), '1', how);
          assert.equal(probe.get('sysctl.kernel.shmmax'), '12345678', how);
          assert.equal(probe.get('sysctl.kernel.msgmax'), '9000', how);
          assert.equal(probe.get('sysctl.fs.mqueue.msg_max'), '20', how);
          assert.equal(probe.get('sysctl.kernel.domainname'), 'pods.example', how);
          assert.ok(probe.mounts().get('/proc/sys')?.options.includes('ro'), `${how}: /proc/sys is read-only still`);
        }
        assert.deepEqual(names.map(hostSysctl), hostBefore, 'the host’s values are untouched');
        const m = JSON.parse((await ok(dd, ['cat-manifest', pod.uuid])).stdout) as { isolators?: unknown[]; apps: Array<{ app: { isolators?: unknown[] } }> };
        assert.deepEqual(m.isolators, [{ name: 'os/unix/sysctl', value: { 'kernel.msgmax': '9000' } }], 'cat-manifest shows --sysctl as the pod’s isolator');
        assert.ok(JSON.stringify(m.apps[0].app.isolators).includes('net.ipv4.ip_forward'), 'and the image’s in the app');
      },
    );
    assert.deepEqual(names.map(hostSysctl), hostBefore);
  });

  test('refused at prepare: non-namespaced, or the host’s namespace; one line, exit 254, no pod', async () => {
    const dir = scratchDir('sysctl-bad');
    const before = podsTree(dd.path);
    const exec = ['--exec', '/bin/true'];
    const cases: Array<{ args: string[]; line: RegExp }> = [
      { args: ['--sysctl=kernel.panic=1', BUSYBOX, ...exec], line: /^the pod: isolator os\/unix\/sysctl: kernel\.panic is not a namespaced sysctl/ },
      { args: ['--sysctl=vm.overcommit_memory=1', BUSYBOX, ...exec], line: /vm\.overcommit_memory is not a namespaced sysctl/ },
      { args: ['--sysctl=kernel.hostname=x', BUSYBOX, ...exec], line: /kernel\.hostname is not a namespaced sysctl/ },
      { args: ['--net=host', '--sysctl=net.ipv4.ip_forward=1', BUSYBOX, ...exec], line: /net\.ipv4\.ip_forward needs a network namespace of the pod's own \(any --net but host\)/ },
      { args: ['--net=none', '--ipc=parent', '--sysctl=kernel.shmmax=1', BUSYBOX, ...exec], line: /kernel\.shmmax needs an IPC namespace of the pod's own/ },
      { args: ['--sysctl=kernel.shmmax', BUSYBOX, ...exec], line: /^--sysctl: "kernel\.shmmax" is not NAME=VALUE$/ },
      {
        args: ['--insecure-options=image', busyboxAci(dir, 'bad1', { exec: ['/bin/true'], isolators: [{ name: 'os/unix/sysctl', value: { 'kernel.core_pattern': '|/x' } }] })],
        line: /^app bad1: isolator os\/unix\/sysctl: kernel\.core_pattern is not a namespaced sysctl/,
      },
      {
        args: ['--insecure-options=image', busyboxAci(dir, 'bad2', { exec: ['/bin/true'], isolators: [{ name: 'os/unix/sysctl', value: ['net.ipv4.ip_forward'] }] })],
        line: /^app bad2: isolator os\/unix\/sysctl: the value must be a map/,
      },
    ];
    for (const c of cases) {
      for (const cmd of ['prepare', 'run']) failsWith(await dd.tspod([cmd, ...c.args]), c.line);
    }
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
  });

  test('run-prepared --net=host of a pod whose sysctls need a private network: stage1 refuses, nothing is written', async () => {
    const uuid = (await ok(dd, ['prepare', '--quiet', '--net=none', '--sysctl=net.ipv4.ip_forward=1', BUSYBOX, '--exec', '/bin/true'])).stdout.trim();
    const before = hostSysctl('net.ipv4.ip_forward');
    const r = await dd.tspod(['run-prepared', '--net=host', uuid]);
    assert.equal(r.code, 254, describeResult(r));
    assert.match(r.stderr, /net\.ipv4\.ip_forward needs a network namespace of the pod's own/, describeResult(r));
    assert.equal(hostSysctl('net.ipv4.ip_forward'), before);
  });
});

describe('--device', { skip: SKIP }, () => {
  let loop = '';
  const secret = `tspod-device-${crypto.randomBytes(6).toString('hex')}`;
  before(() => {
    if (SKIP) return;
    const img = path.join(scratchDir('device-img'), 'disk.img');
    fs.writeFileSync(img, Buffer.concat([Buffer.from(secret), Buffer.alloc(1 << 20)]));
    const lo = spawnSync('losetup', ['-f', '--show', img], { encoding: 'utf8' });
    assert.equal(lo.status, 0, lo.stderr);
    loop = lo.stdout.trim();
  });
  after(() => {
    if (loop) spawnSync('losetup', ['-d', loop]);
  });

  const devProbe = () => {
    const rdev = fs.statSync(loop).rdev;
    const [major, minor] = [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)];
    return [
      'p disk "$(busybox head -c 26 /dev/xdisk 2>&1)"',
      'p null-write "$( (echo x > /dev/sub/null2) 2>&1 && echo ok)"',
      `p copy "$( (busybox rm -f /dev/copy; busybox mknod /dev/copy b ${major} ${minor} && busybox head -c 26 /dev/copy) 2>&1; busybox rm -f /dev/copy)"`,
      'p has-xdisk "$(test -e /dev/xdisk && echo yes || echo no)"',
    ].join('\n');
  };

  test('a host device in one app’s /dev (run and enter); the other app has none; cat-manifest shows it', async () => {
    await withProbedPod(
      dd,
      {
        appFlags: [`--device=${loop}:/dev/xdisk:rw`, '--device=/dev/null:/dev/sub/null2'],
        extra: devProbe(),
        more: [BUSYBOX, '--name=other', '--exec', '/bin/sleep', '--', '3600', '---'],
      },
      async (pod) => {
        const m = JSON.parse((await ok(dd, ['cat-manifest', pod.uuid])).stdout) as { apps: Array<{ name: string; annotations?: Array<{ name: string; value: string }> }> };
        const main = m.apps.find((a) => a.name !== 'other')!.name;
        for (const [how, probe] of [['run', pod.run], ['enter', await pod.enter(main, devProbe())]] as const) {
          assert.equal(probe.get('disk'), secret, `${how}: the device reads`);
          assert.equal(probe.get('null-write'), 'ok', how);
          assert.match(probe.get('copy'), /Operation not permitted/, `${how}: a node of its own for the same device cannot be made (rw: no m for the device cgroup)`);
          assert.doesNotMatch(probe.get('copy'), new RegExp(secret));
          assert.ok(probe.mounts().get('/dev')!.options.includes('nodev'), `${how}: /dev stays nodev`);
          assert.ok(!probe.mounts().get('/dev/xdisk')!.options.includes('nodev'), `${how}: the device's own bind is not`);
        }
        const other = await pod.enter('other', devProbe());
        assert.equal(other.get('has-xdisk'), 'no', 'the other app has no such device');
        const ann = m.apps.find((a) => a.name !== 'other')!.annotations?.find((a) => a.name === 'tspod/devices');
        assert.ok(ann, JSON.stringify(m));
        assert.deepEqual(JSON.parse(ann.value), [
          { hostPath: loop, podPath: '/dev/xdisk', permissions: 'rw' },
          { hostPath: '/dev/null', podPath: '/dev/sub/null2', permissions: 'rwm' },
        ]);
        assert.equal(m.apps.find((a) => a.name === 'other')!.annotations?.find((a) => a.name === 'tspod/devices'), undefined);
      },
    );
  });

  test('bad --device: one line, exit 254, no pod', async () => {
    const before = podsTree(dd.path);
    const cases: Array<[string, RegExp]> = [
      ['/no/such/device', /^--device \/no\/such\/device does not exist/],
      ['/etc/passwd', /^--device \/etc\/passwd is not a device node$/],
      ['dev/null', /^--device "dev\/null": the host path must be absolute/],
      ['/dev/null:/etc/null', /^--device "\/etc\/null": the path in the pod must be below \/dev/],
      ['/dev/null:/dev/../etc/x', /the path in the pod must be below \/dev, without "\.\."/],
      ['/dev/null:/dev/pts/9', /\/dev\/pts and \/dev\/shm are the pod's own/],
      ['/dev/null:/dev/x:rx', /^--device "rx": permissions are some of r, w and m$/],
      ['/dev/null:/dev/x:rw:extra', /^--device "\/dev\/null:\/dev\/x:rw:extra": want HOSTPATH\[:PODPATH\[:rwm\]\]$/],
    ];
    for (const [flag, re] of cases) {
      for (const cmd of ['prepare', 'run']) failsWith(await dd.tspod([cmd, BUSYBOX, `--device=${flag}`, '--exec', '/bin/true']), re);
    }
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
  });
});
