// User namespaces (issue 10 item 6): --private-users runs the pod in a user
// namespace of its own, ids 0..65535 inside = a range of 65,536 host ids no other
// pod holds (from 0x10000000), recorded in the pod and released when it is
// removed. The image's layers are idmapped overlay lowers (files of the image's
// root are root's inside), what the app writes belongs to the range, host volumes
// are not idmapped (the pod's root is no one on the host), and enter joins the same
// namespace. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, TSPOD_BIN, type DataDir, type RunResult } from './harness/index.js';
import { BUSYBOX, failsWith, SKIP, ok, podsTree, removeScratchDirs, scratchDir, startProbedPod, withProbedPod, type Probe } from './pods-util.js';

const BASE = 0x10000000;
const SIZE = 65536;

let dd: DataDir;
let work = '';

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-userns');
  work = scratchDir('isolation-userns');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** The probe's extra lines: its maps, and what root inside tries that host root could do. */
const PROBE = `
l uidmap cat /proc/self/uid_map
l gidmap cat /proc/self/gid_map
p busybox-owner "$(stat -c %u:%g /bin/busybox)"
p root-owner "$(stat -c %u:%g /)"
if mknod /tmp-node c 1 3 2>/dev/null; then p mknod yes; rm -f /tmp-node; else p mknod no; fi
if ls /proc/1/fd >/dev/null 2>&1; then p pid1-fd yes; else p pid1-fd no; fi
p sys-class "$(ls /sys/class >/dev/null 2>&1 && echo yes || echo no)"
`;

/** [inside, host, count] of the one line of a uid_map/gid_map the probe printed. */
function mapOf(p: Probe, key: string): number[] {
  const lines = p.lines(key);
  assert.equal(lines.length, 1, `${key}: ${lines.join('|')}`);
  return lines[0].trim().split(/\s+/).map(Number);
}

/** The pod's range base, checked against its maps (run or enter) and its userns file. */
function rangeOf(p: Probe, podDir: string, who: string): number {
  const [inside, host, count] = mapOf(p, 'uidmap');
  assert.equal(inside, 0, `${who}: uid_map inside`);
  assert.equal(count, SIZE, `${who}: uid_map count`);
  assert.ok(host >= BASE && (host - BASE) % SIZE === 0, `${who}: uid_map base ${host}`);
  assert.deepEqual(mapOf(p, 'gidmap'), [0, host, SIZE], `${who}: gid_map`);
  const file = JSON.parse(fs.readFileSync(path.join(podDir, 'userns'), 'utf8'));
  assert.deepEqual(file, { uidMap: [[0, host, SIZE]], gidMap: [[0, host, SIZE]] }, `${who}: the pod's userns file`);
  return host;
}

function hostOwner(file: string): string {
  const st = fs.statSync(file);
  return `${st.uid}:${st.gid}`;
}

describe('--private-users', { skip: SKIP }, () => {
  test('uid/gid maps inside (run and enter), status --format=json; image files are root-owned inside, what the app writes belongs to the range', async () => {
    await withProbedPod(dd, { podFlags: ['--private-users'], extra: `${PROBE}\necho new > /written-by-app` }, async (pod) => {
      const base = rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.get('uid'), '0');
      assert.equal(pod.run.get('busybox-owner'), '0:0', 'image files (idmapped lower) are root-owned inside');
      assert.equal(pod.run.get('root-owner'), '0:0', 'the app root (upper dir) is root-owned inside');
      assert.equal(pod.run.get('proc-mounted'), 'yes');
      assert.equal(pod.run.get('sys-class'), 'yes', 'sysfs (--net=host) is there');
      // Every existing defence stays: the app's sets, masked paths, pid 1 closed to the pod.
      assert.equal(pod.run.caps().CapBnd, '00000000a80425fb');
      assert.equal(pod.run.get('mknod'), 'no', 'CAP_MKNOD inside a user namespace makes no device');
      assert.equal(pod.run.get('pid1-fd'), 'no', "pid 1's fds are closed to the pod");
      assert.ok(pod.run.mounts().has('/proc/sys'), 'the read-only /proc/sys bind is there');
      // On the host: the upper dir and what the app wrote belong to the range's root;
      // the image's layer in the store is untouched (still the host's root).
      const app = JSON.parse(fs.readFileSync(path.join(pod.dir, 'pod'), 'utf8')).apps[0].name as string;
      const upper = path.join(pod.dir, 'overlay', app, 'upper');
      assert.equal(hostOwner(upper), `${base}:${base}`);
      assert.equal(hostOwner(path.join(upper, 'written-by-app')), `${base}:${base}`);
      const layers = JSON.parse(fs.readFileSync(path.join(pod.dir, 'appsinfo', app, 'layers'), 'utf8')) as string[];
      assert.equal(hostOwner(path.join(layers[layers.length - 1], 'bin/busybox')), '0:0', 'the store layer keeps its owner');
      // enter: the same user namespace and the same limits.
      const e = await pod.enter(undefined, PROBE);
      assert.equal(rangeOf(e, pod.dir, 'enter'), base);
      assert.equal(e.get('mknod'), 'no', 'enter: mknod');
      assert.equal(e.get('pid1-fd'), 'no', 'enter: pid 1');
      assert.equal(e.caps().CapBnd, '00000000a80425fb');
      const hostNs = fs.readlinkSync('/proc/self/ns/user');
      assert.notEqual(fs.readlinkSync(`/proc/${fs.readFileSync(path.join(pod.dir, 'pid'), 'utf8').trim()}/ns/user`), hostNs, "pid 1 is in the pod's user namespace");
      const status = JSON.parse((await ok(dd, ['status', '--format=json', pod.uuid])).stdout);
      assert.deepEqual(status.user_namespace, { uid_map: [[0, base, SIZE]], gid_map: [[0, base, SIZE]] });
    });
  });

  test('two pods at once get disjoint ranges', async () => {
    const a = await startProbedPod(dd, { podFlags: ['--private-users'], extra: PROBE });
    try {
      await withProbedPod(dd, { podFlags: ['--private-users'], extra: PROBE }, async (b) => {
        const ra = rangeOf(a.run, a.dir, 'pod a');
        const rb = rangeOf(b.run, b.dir, 'pod b');
        assert.ok(ra + SIZE <= rb || rb + SIZE <= ra, `ranges ${ra} and ${rb} overlap`);
      });
    } finally {
      await a.stop();
    }
  });

  test('a host volume: the app writes as its range; root inside cannot write a file of the host root, which shows as nobody', async () => {
    const vol = path.join(work, 'vol');
    fs.mkdirSync(vol);
    fs.chmodSync(vol, 0o777);
    fs.writeFileSync(path.join(vol, 'host-root-file'), 'host\n', { mode: 0o644 });
    const attack = `
p host-file-owner "$(stat -c %u:%g /v/host-root-file)"
if echo pwned >> /v/host-root-file 2>/dev/null; then p write-host-file yes; else p write-host-file no; fi
if chmod 666 /v/host-root-file 2>/dev/null; then p chmod-host-file yes; else p chmod-host-file no; fi
if chown 0:0 /v/host-root-file 2>/dev/null; then p chown-host-file yes; else p chown-host-file no; fi
echo mine > /v/app-file && p app-file yes
p app-file-owner "$(stat -c %u:%g /v/app-file)"
`;
    const flags = [`--volume=v,kind=host,source=${vol}`];
    const appFlags = ['--mount=volume=v,target=/v'];
    await withProbedPod(dd, { podFlags: ['--private-users', ...flags], appFlags, extra: `${PROBE}${attack}` }, async (pod) => {
      const base = rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.get('host-file-owner'), '65534:65534');
      assert.equal(pod.run.get('write-host-file'), 'no', 'root inside wrote a file of the host root');
      assert.equal(pod.run.get('chmod-host-file'), 'no');
      assert.equal(pod.run.get('chown-host-file'), 'no');
      assert.equal(pod.run.get('app-file'), 'yes');
      assert.equal(pod.run.get('app-file-owner'), '0:0', "the app's own file is root's inside");
      assert.equal(hostOwner(path.join(vol, 'app-file')), `${base}:${base}`, "and the range's on the host");
      const e = await pod.enter(undefined, attack.replace('/v/app-file', '/v/enter-file'));
      assert.equal(e.get('write-host-file'), 'no', 'enter wrote a file of the host root');
      assert.equal(e.get('chown-host-file'), 'no');
    });
    assert.equal(fs.readFileSync(path.join(vol, 'host-root-file'), 'utf8'), 'host\n');
    assert.equal(fs.statSync(path.join(vol, 'host-root-file')).mode & 0o777, 0o644);
    // The control: without --private-users the pod's root is the host's.
    fs.rmSync(path.join(vol, 'app-file'));
    await withProbedPod(dd, { podFlags: flags, appFlags, extra: `${PROBE}${attack}` }, async (pod) => {
      assert.deepEqual(mapOf(pod.run, 'uidmap'), [0, 0, 4294967295]);
      assert.equal(pod.run.get('write-host-file'), 'yes');
      assert.ok(!fs.existsSync(path.join(pod.dir, 'userns')));
      const status = JSON.parse((await ok(dd, ['status', '--format=json', pod.uuid])).stdout);
      assert.equal(status.user_namespace, undefined);
    });
  });

  test('--net=none: sysfs and /proc of the pod, loopback up', async () => {
    await withProbedPod(dd, { podFlags: ['--private-users', '--net=none'], extra: `${PROBE}\np lo "$(cat /sys/class/net/lo/operstate)"` }, async (pod) => {
      rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.get('sys-class'), 'yes');
      assert.equal(pod.run.get('proc-mounted'), 'yes');
      assert.equal(pod.run.get('lo'), 'unknown');
    });
  });

  test('--no-overlay: the copied tree is shifted into the range (chown), root-owned inside', async () => {
    await withProbedPod(dd, { podFlags: ['--private-users', '--no-overlay'], extra: `${PROBE}\necho new > /written-by-app` }, async (pod) => {
      const base = rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.get('busybox-owner'), '0:0');
      assert.equal(pod.run.get('root-owner'), '0:0');
      const app = JSON.parse(fs.readFileSync(path.join(pod.dir, 'pod'), 'utf8')).apps[0].name as string;
      const rootfs = path.join(pod.dir, 'apps', app, 'rootfs');
      assert.equal(hostOwner(path.join(rootfs, 'bin/busybox')), `${base}:${base}`);
      assert.equal(hostOwner(path.join(rootfs, 'written-by-app')), `${base}:${base}`);
      const e = await pod.enter(undefined, PROBE);
      assert.equal(rangeOf(e, pod.dir, 'enter'), base);
    });
  });

  test('even with CAP_SYS_ADMIN kept, root inside cannot unmount a masked path, mount a proc or sysfs, or set the hostname (the mounts and namespaces are the host\'s)', async () => {
    const attack = `
mkdir -p /mnt-attack
if umount /proc/keys 2>/dev/null; then p umount-masked yes; else p umount-masked no; fi
if umount -l /proc/sys 2>/dev/null; then p umount-ro yes; else p umount-ro no; fi
if mount -t proc proc /mnt-attack 2>/dev/null; then p mount-proc yes; umount /mnt-attack; else p mount-proc no; fi
if mount -t sysfs sysfs /mnt-attack 2>/dev/null; then p mount-sysfs yes; umount /mnt-attack; else p mount-sysfs no; fi
if hostname pwned 2>/dev/null; then p sethostname yes; else p sethostname no; fi
`;
    const appFlags = ['--caps-retain=CAP_SYS_ADMIN,CAP_SETUID,CAP_SETGID'];
    // Without the seccomp filter (which denies mount and umount2 by itself): the user
    // namespace alone must hold.
    const noSeccomp = '--insecure-options=seccomp';
    await withProbedPod(dd, { podFlags: [noSeccomp, '--private-users'], appFlags, extra: `${PROBE}${attack}` }, async (pod) => {
      rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.caps().CapEff, '00000000002000c0', 'CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID');
      for (const k of ['umount-masked', 'umount-ro', 'mount-proc', 'mount-sysfs', 'sethostname']) assert.equal(pod.run.get(k), 'no', k);
      const e = await pod.enter(undefined, attack);
      for (const k of ['umount-masked', 'umount-ro', 'mount-proc', 'sethostname']) assert.equal(e.get(k), 'no', `enter: ${k}`);
    });
    // The control: the same app without --private-users can (it is the host's root).
    await withProbedPod(dd, { podFlags: [noSeccomp], appFlags, extra: `${PROBE}${attack}` }, async (pod) => {
      assert.equal(pod.run.get('umount-masked'), 'yes');
      assert.equal(pod.run.get('sethostname'), 'yes');
    });
  });

  // Lowering it needs CAP_SYS_RESOURCE on the host, which some test hosts (containers) lack.
  const canLower = (BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`) & (1n << 24n)) !== 0n;
  for (const v of ['500', '-500']) {
    const skip = v.startsWith('-') && !canLower ? 'no CAP_SYS_RESOURCE here' : false;
    test(`--oom-score-adj=${v} applies in the user namespace (a negative one is lowered by the helper as the host's root): run and enter`, { skip }, async () => {
      const extra = `${PROBE}\np oom "$(cat /proc/self/oom_score_adj)"\nif echo -900 > /proc/self/oom_score_adj 2>/dev/null; then p lower yes; else p lower no; fi`;
      await withProbedPod(dd, { podFlags: ['--private-users'], appFlags: [`--oom-score-adj=${v}`], extra }, async (pod) => {
        rangeOf(pod.run, pod.dir, 'run');
        assert.equal(pod.run.get('oom'), v);
        assert.equal(pod.run.get('lower'), 'no', 'the app cannot go lower');
        const e = await pod.enter(undefined, `${PROBE}\np oom "$(cat /proc/self/oom_score_adj)"`);
        assert.equal(e.get('oom'), v);
      });
    });
  }

  test('a user inside (--user=1000) is base+1000 on the host', async () => {
    await withProbedPod(dd, { podFlags: ['--private-users'], appFlags: ['--user=1000', '--group=1000'], extra: `${PROBE}\np self-owner "$(stat -c %u /proc/self/status)"` }, async (pod) => {
      const base = rangeOf(pod.run, pod.dir, 'run');
      assert.equal(pod.run.get('uid'), '1000');
      const pid = Number(pod.run.get('pid'));
      assert.ok(pid > 0);
      const appPid = fs.readFileSync(path.join(pod.dir, 'apps-pid', fs.readdirSync(path.join(pod.dir, 'apps-pid'))[0]), 'utf8').trim();
      const status = fs.readFileSync(`/proc/${appPid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${base + 1000}\\s+${base + 1000}\\s`, 'm'));
    });
  });
});

describe('--private-users: terminals', { skip: SKIP || (spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0 && 'needs script(1)') }, () => {
  /** Runs tspod on a terminal of script(1)'s, stdin at EOF. */
  const onTerminal = (args: string[]) => {
    const cmd = [TSPOD_BIN, `--dir=${dd.path}`, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  test("run --interactive: the pod's console is its root's; enter's terminal too", async () => {
    const out = onTerminal(['run', '--interactive', '--private-users', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo "console $(stat -c %u:%g /dev/console) $(cat /proc/self/uid_map)"']);
    assert.match(out, /console 0:0 +0 +\d+ +65536/, out);
    await withProbedPod(dd, { podFlags: ['--private-users'], appFlags: ['--user=1000'] }, async (pod) => {
      const e = onTerminal(['enter', pod.uuid, '/bin/sh', '-c', 'echo "tty $(stat -c %u:%g $(tty)) $(id -u)"']);
      assert.match(e, /tty 0:0 1000/, e);
    });
  });
});

describe('--private-users: export', { skip: SKIP }, () => {
  for (const flags of [[], ['--no-overlay']]) {
    test(`export${flags.map((f) => ` ${f}`).join('')}: the app's files are the pod's own ids in the ACI, not the range's`, async () => {
      const uuidFile = path.join(work, `export-uuid${flags.length}`);
      await ok(dd, ['run', `--uuid-file-save=${uuidFile}`, '--private-users', ...flags, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo x > /by-root && touch /by-1000 && chown 1000:1000 /by-1000']);
      const out = path.join(work, `export${flags.length}.aci`);
      await ok(dd, ['export', '--overwrite', fs.readFileSync(uuidFile, 'utf8').trim(), out]);
      const list = spawnSync('tar', ['-tvf', out, '--numeric-owner'], { encoding: 'utf8' }).stdout;
      const owner = (f: string) => new RegExp(`^\\S+ (\\d+/\\d+) .* rootfs/${f}$`, 'm').exec(list)?.[1];
      assert.equal(owner('by-root'), '0/0', list);
      assert.equal(owner('by-1000'), '1000/1000', list);
      assert.equal(owner('bin/busybox'), '0/0', list);
    });
  }
});

describe('--private-users: ranges are released', { skip: SKIP }, () => {
  test('after rm, the next pod gets the same range again; prepare records it, run-prepared uses it', async () => {
    const own = makeDataDir(undefined, 'isolation-userns-release');
    try {
      const uuidOf = (r: { stdout: string }) => r.stdout.trim().split('\n').pop()!;
      const first = uuidOf((await ok(own, ['prepare', '--quiet', '--private-users', BUSYBOX, '--exec=/bin/true'])));
      const second = uuidOf((await ok(own, ['prepare', '--quiet', '--private-users', BUSYBOX, '--exec=/bin/true'])));
      const rangeFile = (u: string) => JSON.parse(fs.readFileSync(path.join(own.path, 'pods', 'prepared', u, 'userns'), 'utf8')).uidMap[0][1] as number;
      const r1 = rangeFile(first);
      const r2 = rangeFile(second);
      assert.notEqual(r1, r2);
      assert.ok(r1 < r2, 'the lowest free range first');
      // run-prepared: the pod runs in its recorded range.
      const run = (await ok(own, ['run-prepared', first]));
      void run;
      const status = JSON.parse((await ok(own, ['status', '--format=json', first])).stdout);
      assert.deepEqual(status.user_namespace.uid_map, [[0, r1, SIZE]]);
      (await ok(own, ['rm', first]));
      const third = uuidOf((await ok(own, ['prepare', '--quiet', '--private-users', BUSYBOX, '--exec=/bin/true'])));
      assert.equal(rangeFile(third), r1, "the removed pod's range is free again");
      (await ok(own, ['rm', second, third]));
    } finally {
      await own.remove();
    }
  });
});

describe('--private-users: bad input', { skip: SKIP }, () => {
  test('a host without user namespaces (max_user_namespaces 0): one line, 254, no pod', () => {
    // This sysctl is not namespaced (and may be read-only here): the test shows tspod
    // a 0 through a bind mount in a mount namespace of its own.
    const zero = path.join(work, 'max_user_namespaces');
    fs.writeFileSync(zero, '0\n');
    const before = podsTree(dd.path);
    const argv = ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /proc/sys/user/max_user_namespaces && shift && exec "$@"', 'sh', zero, TSPOD_BIN, `--dir=${dd.path}`, 'run', '--private-users', BUSYBOX, '--exec=/bin/true'];
    const r = spawnSync('unshare', argv, { encoding: 'utf8' });
    const result: RunResult = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, signal: r.signal, timedOut: false, argv: ['unshare', ...argv] };
    failsWith(result, /--private-users: user namespaces are disabled on this host \(\/proc\/sys\/user\/max_user_namespaces is 0\)/);
    assert.deepEqual(podsTree(dd.path), before, describeResult(result));
  });
});
