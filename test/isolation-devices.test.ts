// The device cgroup (issue 10 item 4): each app's cgroup allows exactly the pod's
// minimal /dev (null, zero, full, random, urandom, tty, ptmx, pts) and its own
// --device nodes with their letters, and nothing else, not even mknod: on this
// machine's hybrid layout through the v1 devices controller (tspod/<uuid>/app-NAME:
// deny all, then allow), on pure v2 (a private mount namespace that sees only a
// cgroup2) through the helper's BPF_PROG_TYPE_CGROUP_DEVICE program on the app's
// cgroup. Each attack runs through `run` and through `tspod enter`:
//  - `--device=LOOP:PATH:r` reads the host's loop device but cannot write it
//    (EPERM from the cgroup: a read-only bind does not stop writes to a node);
//    `:w` writes but cannot read; `:wm` may mknod it too;
//  - a root app cannot mknod a host disk (EPERM), and with CAP_SYS_ADMIN, no seccomp
//    filter and a tmpfs of its own mounted without nodev (nodev stops nothing
//    there) it still cannot open a node of the device it may make (`:m`), while
//    the control (`:rwm`) reads the disk's secret through that same kind of node;
//  - where the host has no device cgroup, only rw and rwm are accepted (one line, 254).
// Needs root and losetup.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir, type RunResult } from './harness/index.js';
import { BUSYBOX, failsWith, parseProbe, podsTree, probeScript, removeScratchDirs, scratchDir, SKIP as PODS_SKIP, startTspod, unshareTspod, V2_CGROUP_SETUP, withProbedPod, type Probe } from './pods-util.js';

const CG = '/sys/fs/cgroup';
const HAS_LOSETUP = spawnSync('losetup', ['--version'], { stdio: 'ignore' }).status === 0;
const SKIP = PODS_SKIP || (!HAS_LOSETUP && 'needs losetup');
const V1_DEVICES = fs.existsSync(path.join(CG, 'devices', 'devices.list'));
const UNIFIED = path.join(CG, 'unified');
const HAS_UNIFIED = fs.existsSync(path.join(UNIFIED, 'cgroup.procs'));

/** The pod's minimal /dev, as devices.list and status print it. */
const POD_RULES = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm', 'c 136:* rw'];

let dd: DataDir;
interface Loop {
  dev: string;
  img: string;
  secret: string;
  major: number;
  minor: number;
}
const loops: Loop[] = [];

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-devices');
  const dir = scratchDir('devices-img');
  for (let i = 0; i < 2; i++) {
    const secret = `tspod-dev${i}-${crypto.randomBytes(6).toString('hex')}`; // 23 bytes: head -c 23
    const img = path.join(dir, `disk${i}.img`);
    fs.writeFileSync(img, Buffer.concat([Buffer.from(secret), Buffer.alloc(1 << 20)]));
    const lo = spawnSync('losetup', ['-f', '--show', img], { encoding: 'utf8' });
    assert.equal(lo.status, 0, lo.stderr);
    const dev = lo.stdout.trim();
    const rdev = fs.statSync(dev).rdev;
    loops.push({ dev, img, secret, major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) });
  }
});
after(async () => {
  for (const l of loops) spawnSync('losetup', ['-d', l.dev]);
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** sh: `p KEY "<output on one line> rc=<exit status>"` of a command. */
const t = (key: string, cmd: string) => `o=$( (${cmd}) 2>&1); r=$?; p ${key} "$(echo $o) rc=$r"`;

/**
 * The letters probe: /dev/rdisk (loop 0, `r`) and /dev/wdisk (loop 1, `wm`):
 * read and write each, mknod copies of them in /dev/shm, a host disk node and a
 * /dev/null one in /tmp.
 */
function lettersProbe(): string {
  const [a, b] = loops;
  return [
    'busybox mkdir -p /tmp',
    t('r.read', 'busybox head -c 23 /dev/rdisk'),
    t('r.write', 'echo x > /dev/rdisk'),
    t('w.read', 'busybox head -c 23 /dev/wdisk'),
    t('w.write', `printf "$WMARK" > /dev/wdisk`),
    t('r.mknod', `busybox mknod /dev/shm/r-$$ b ${a.major} ${a.minor}`),
    t('w.mknod', `busybox mknod /dev/shm/w-$$ b ${b.major} ${b.minor} && busybox head -c 1 /dev/shm/w-$$`),
    t('null.mknod', 'busybox mknod /tmp/null-$$ c 1 3 && busybox rm /tmp/null-$$'),
    t('sda.mknod', 'busybox mknod /tmp/sda b 8 0'),
    t('zero.read', 'busybox head -c 1 /dev/zero | busybox wc -c'),
    t('urandom.read', 'busybox head -c 1 /dev/urandom | busybox wc -c'),
  ].join('\n');
}

const EPERM = /Operation not permitted rc=1$/;

/** What the letters probe must show (run, enter; v1 and v2 alike). */
function checkLetters(p: Probe, how: string, mark: string): void {
  const [a, b] = loops;
  assert.equal(p.get('r.read'), `${a.secret} rc=0`, `${how}: r reads`);
  assert.match(p.get('r.write'), EPERM, `${how}: r does not write (the cgroup, not the mount)`);
  assert.match(p.get('w.read'), EPERM, `${how}: w does not read`);
  assert.equal(p.get('w.write'), ' rc=0', `${how}: w writes`);
  assert.equal(fs.readFileSync(b.dev).subarray(0, mark.length).toString(), mark, `${how}: the host sees what the app wrote`);
  assert.match(p.get('r.mknod'), EPERM, `${how}: no m, no mknod`);
  assert.match(p.get('w.mknod'), /Permission denied rc=1$/, `${how}: m makes the node; /dev/shm is nodev, so it does not open`);
  assert.equal(p.get('null.mknod'), ' rc=0', `${how}: a node of the pod's /dev may be made`);
  assert.match(p.get('sda.mknod'), EPERM, `${how}: a host disk may not`);
  assert.equal(p.get('zero.read'), '1 rc=0', `${how}: the pod's /dev works`);
  assert.equal(p.get('urandom.read'), '1 rc=0', how);
}

/**
 * The nodev-free attack: a tmpfs of the app's own (it has CAP_SYS_ADMIN and no
 * seccomp filter) mounted without nodev; a node of loop 0 made there and read.
 */
function tmpfsProbe(): string {
  const [a] = loops;
  return [
    'busybox mkdir -p /mnt/t-$$ && busybox mount -t tmpfs -o mode=0700 none /mnt/t-$$',
    'p tmpfs-opts "$(busybox grep " /mnt/t-$$ " /proc/self/mountinfo)"',
    t('tmpfs.mknod', `busybox mknod /mnt/t-$$/blk b ${a.major} ${a.minor}`),
    t('tmpfs.read', `busybox head -c 23 /mnt/t-$$/blk`),
    'busybox umount /mnt/t-$$; busybox rmdir /mnt/t-$$',
  ].join('\n');
}

function checkTmpfs(p: Probe, how: string, letters: 'none' | 'm' | 'rwm'): void {
  const [a] = loops;
  const opts = p.get('tmpfs-opts');
  assert.match(opts, / - tmpfs /, `${how}: the tmpfs is mounted: ${opts}`);
  assert.doesNotMatch(opts.split(' - ')[0], /nodev/, `${how}: without nodev: ${opts}`);
  if (letters === 'none') {
    assert.match(p.get('tmpfs.mknod'), EPERM, `${how}: mknod refused by the device cgroup`);
    assert.match(p.get('tmpfs.read'), /No such file/, how);
  } else {
    assert.equal(p.get('tmpfs.mknod'), ' rc=0', `${how}: m: the node is made`);
    if (letters === 'm') assert.match(p.get('tmpfs.read'), EPERM, `${how}: opening it is refused by the device cgroup (nodev would not)`);
    else assert.equal(p.get('tmpfs.read'), `${a.secret} rc=0`, `${how}: control: with r the node reads the host disk`);
  }
}

function statusRules(r: RunResult): string[] | null {
  assert.equal(r.code, 0, describeResult(r));
  const st = JSON.parse(r.stdout) as { apps: Array<{ device_rules: string[] | null }> };
  return st.apps[0].device_rules;
}

describe('the device cgroup on the hybrid (v1) layout', { skip: SKIP || (!V1_DEVICES && 'no v1 devices hierarchy here') }, () => {
  test('each app: deny all, the pod’s /dev and its --device letters (r, w, m), run and enter; pid 1 unrestricted; status shows the rules', async () => {
    const [a, b] = loops;
    const mark = `M${crypto.randomBytes(4).toString('hex')}`;
    const probe = lettersProbe();
    await withProbedPod(
      dd,
      { appFlags: [`--device=${a.dev}:/dev/rdisk:r`, `--device=${b.dev}:/dev/wdisk:wm`, `--set-env=WMARK=${mark}`], extra: probe },
      async (pod) => {
        const app = fs.readdirSync(path.join(pod.dir, 'apps-pid'))[0];
        const pid = Number(fs.readFileSync(path.join(pod.dir, 'apps-pid', app), 'utf8'));
        assert.match(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^\\d+:devices:/tspod/${pod.uuid}/app-${app}$`, 'm'));
        const want = [...POD_RULES, `b ${a.major}:${a.minor} r`, `b ${b.major}:${b.minor} wm`];
        const list = fs.readFileSync(path.join(CG, 'devices', 'tspod', pod.uuid, `app-${app}`, 'devices.list'), 'utf8').trim().split('\n');
        assert.deepEqual([...list].sort(), [...want].sort(), 'devices.list of the app');
        assert.equal(fs.readFileSync(path.join(CG, 'devices', 'tspod', pod.uuid, 'init', 'devices.list'), 'utf8').trim(), 'a *:* rwm', 'the helper and pid 1 are not limited');
        assert.deepEqual(statusRules(await dd.tspod(['status', '--format=json', pod.uuid])), want, 'status --format=json');
        checkLetters(pod.run, 'run', mark);
        fs.writeFileSync(b.dev, Buffer.alloc(mark.length)); // rubbed out: enter must write it again
        const entered = await dd.tspod(['enter', pod.uuid, '/bin/sh', '-c', probeScript(probe)]);
        assert.equal(entered.code, 0, describeResult(entered));
        checkLetters(parseProbe(entered.stdout), 'enter', mark);
      },
    );
  });

  for (const [flags, letters] of [[[], 'none'], [[`--device=LOOP:/dev/xdisk:m`], 'm'], [[`--device=LOOP:/dev/xdisk:rwm`], 'rwm']] as const) {
    test(`CAP_SYS_ADMIN, no seccomp filter, a tmpfs without nodev${flags.length ? ` and ${flags[0].replace('LOOP', 'a loop device')}` : ''}: ${letters === 'rwm' ? 'the node reads (control)' : letters === 'm' ? 'its node is made but does not open' : 'no node of the host disk'} (run and enter)`, async () => {
      const probe = tmpfsProbe();
      const appFlags = flags.map((f) => f.replace('LOOP', loops[0].dev));
      await withProbedPod(dd, { podFlags: ['--insecure-options=capabilities,seccomp'], appFlags, extra: probe }, async (pod) => {
        checkTmpfs(pod.run, 'run', letters);
        checkTmpfs(await pod.enter(undefined, probe), 'enter', letters);
      });
    });
  }
});

// ---------------------------------------------------------------- pure cgroup v2

const v2Tspod = (args: string[]): RunResult => unshareTspod(V2_CGROUP_SETUP, dd.path, args);

/** A probed pod run on pure v2: fn gets its uuid and run probe; stopped and removed after. */
async function withV2Pod(flags: string[], extra: string, fn: (uuid: string, run: Probe) => Promise<void>): Promise<void> {
  const uuidFile = path.join(dd.path, `v2-${crypto.randomBytes(4).toString('hex')}`);
  const pod = startTspod(dd, ['run', `--uuid-file-save=${uuidFile}`, ...flags.filter((f) => f.startsWith('--insecure')), BUSYBOX, ...flags.filter((f) => !f.startsWith('--insecure')), '--exec=/bin/sh', '--', '-c', `${probeScript(extra)}\necho probe-ready\nexec sleep 3600`], { unshareSetup: V2_CGROUP_SETUP });
  let uuid = '';
  try {
    await pod.waitOutput(/^probe-ready$/m, 'the v2 pod');
    uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    await fn(uuid, parseProbe(pod.stdout()));
    assert.equal(v2Tspod(['stop', uuid]).code, 0);
    await pod.exited;
  } finally {
    pod.proc.kill('SIGKILL');
    await pod.exited;
    if (uuid) await dd.tspod(['rm', uuid]);
  }
}

describe('the device cgroup on pure v2: the helper’s BPF program on the app’s cgroup', { skip: SKIP || (!HAS_UNIFIED && 'no cgroup2 mounted at /sys/fs/cgroup/unified') }, () => {
  test('--device letters r, w, m; the pod’s /dev; no host disk (run and enter); status shows the rules', async () => {
    const [a, b] = loops;
    const mark = `V${crypto.randomBytes(4).toString('hex')}`;
    const probe = lettersProbe();
    await withV2Pod([`--device=${a.dev}:/dev/rdisk:r`, `--device=${b.dev}:/dev/wdisk:wm`, `--set-env=WMARK=${mark}`], probe, async (uuid, run) => {
      checkLetters(run, 'run (v2)', mark);
      fs.writeFileSync(b.dev, Buffer.alloc(mark.length));
      const e = v2Tspod(['enter', uuid, '/bin/sh', '-c', probeScript(probe)]);
      assert.equal(e.code, 0, describeResult(e));
      checkLetters(parseProbe(e.stdout), 'enter (v2)', mark);
      assert.deepEqual(statusRules(v2Tspod(['status', '--format=json', uuid])), [...POD_RULES, `b ${a.major}:${a.minor} r`, `b ${b.major}:${b.minor} wm`]);
    });
  });

  for (const letters of ['none', 'm'] as const) {
    test(`CAP_SYS_ADMIN, no seccomp filter, a tmpfs without nodev${letters === 'm' ? ', --device=LOOP:m' : ''}: ${letters === 'm' ? 'the node does not open' : 'no node of the host disk'} (run and enter)`, async () => {
      const probe = tmpfsProbe();
      await withV2Pod(['--insecure-options=capabilities,seccomp', ...(letters === 'm' ? [`--device=${loops[0].dev}:/dev/xdisk:m`] : [])], probe, async (uuid, run) => {
        checkTmpfs(run, 'run (v2)', letters);
        const e = v2Tspod(['enter', uuid, '/bin/sh', '-c', probeScript(probe)]);
        assert.equal(e.code, 0, describeResult(e));
        checkTmpfs(parseProbe(e.stdout), 'enter (v2)', letters);
      });
    });
  }
});

// ---------------------------------------------------------------- no device cgroup

describe('a host without a device cgroup (v1 without the devices hierarchy)', { skip: SKIP || (!V1_DEVICES && 'no v1 devices hierarchy to hide') }, () => {
  test('--device without r or w is refused at prepare (one line, 254, no pod); rw runs', () => {
    const noDevices = (args: string[]): RunResult => unshareTspod(`umount ${CG}/devices`, dd.path, args);
    const [a] = loops;
    const before = podsTree(dd.path);
    for (const perms of ['r', 'w', 'rm']) {
      for (const cmd of ['prepare', 'run']) {
        failsWith(noDevices([cmd, BUSYBOX, `--device=${a.dev}:/dev/x:${perms}`, '--exec=/bin/true']), new RegExp(`^app [\\w-]+: --device ${a.dev}:${perms} needs a device cgroup to limit its access, and this host has none \\(cgroup v1 \\(.*\\)\\): use rw or rwm$`));
      }
    }
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
    const r = noDevices(['run', '--uuid-file-save=' + path.join(dd.path, 'nodev-uuid'), BUSYBOX, `--device=${a.dev}:/dev/x:rw`, '--exec=/bin/sh', '--', '-c', 'busybox head -c 23 /dev/x']);
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, a.secret);
    const st = JSON.parse(noDevices(['status', '--format=json', fs.readFileSync(path.join(dd.path, 'nodev-uuid'), 'utf8').trim()]).stdout) as { apps: Array<{ device_rules: unknown }> };
    assert.equal(st.apps[0].device_rules, null, 'status: no device cgroup');
  });
});
