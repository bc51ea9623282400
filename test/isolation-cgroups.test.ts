// cgroups (issue 10 items 5, 7 and 8): one cgroup per pod, per app and for the
// pod's supervisor (tspod/<uuid>/{init,app-<name>}), on this machine's hybrid
// layout (v1 controllers) and, in a private mount namespace that sees only a
// cgroup2 at /sys/fs/cgroup, on pure v2; --memory, --cpu, --cpu-shares,
// --pids-limit and the image's resource isolators written into the app's
// cgroup; an app that allocates past its limit is OOM-killed and reported; a
// fork bomb stops at the pids limit; pause/resume freeze and thaw; stats move;
// each app has a cgroup namespace of its own, which enter joins with its cgroup;
// an exited pod leaves no cgroup (the helper removes them at exit; gc those
// of a pod whose helper was killed). Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeResult, makeDataDir, type DataDir, type RunResult } from './harness/index.js';
import { busyboxAci, BUSYBOX, failsWith, ok, podsTree, removeScratchDirs, scratchDir, SKIP, startTspod, stopAndWait, unshareTspod, V2_CGROUP_SETUP, waitFor, withProbedPod } from './pods-util.js';

const CG = '/sys/fs/cgroup';
const V1 = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'];
const HYBRID = ['memory', 'cpu', 'pids', 'freezer'].every((c) => fs.existsSync(path.join(CG, c, 'cgroup.procs')));
const UNIFIED = path.join(CG, 'unified');
const HAS_UNIFIED = fs.existsSync(path.join(UNIFIED, 'cgroup.procs'));
const SKIP_V1 = SKIP || (!HYBRID && 'this host has no cgroup v1 memory, cpu, pids and freezer hierarchies');

let dd: DataDir;
let work = '';

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-cgroups');
  work = scratchDir('isolation-cgroups');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

const CGROUP_PROBE = `l cgroup cat /proc/self/cgroup\np ns.cgroup "$(readlink /proc/self/ns/cgroup)"\nl fds ls -l /proc/$$/fd\np cgroupfs "$(grep -cE ' - cgroup2? ' /proc/self/mountinfo)"`;

function read(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8').trim();
}

function appName(podDir: string): string {
  return fs.readdirSync(path.join(podDir, 'apps-pid'))[0];
}

function appPid(podDir: string, app: string): number {
  return Number(fs.readFileSync(path.join(podDir, 'apps-pid', app), 'utf8'));
}

/** /proc/PID/cgroup as controller → path (v2's line under ''). */
function cgroupsOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean)) {
    const [, ctrls, p] = /^\d+:([^:]*):(.*)$/.exec(l)!;
    for (const c of ctrls.split(',')) out.set(c, p);
  }
  return out;
}

function v1Dir(ctrl: string, uuid: string, sub = ''): string {
  return path.join(CG, ctrl, 'tspod', uuid, sub);
}

/** Every tspod cgroup of a pod, in any hierarchy (v1 ones and the cgroup2 beside them). */
function podCgroups(uuid: string): string[] {
  const roots = [...V1.map((c) => path.join(CG, c)), UNIFIED, CG];
  return roots.map((r) => path.join(r, 'tspod', uuid)).filter((d) => fs.existsSync(d));
}

describe('cgroups on the hybrid (v1) layout', { skip: SKIP_V1 }, () => {
  test('an app in its own cgroup in each hierarchy, pid 1 in init, limits from the flags, a cgroup namespace of its own; enter joins both', async () => {
    const flags = ['--memory=64Mi', '--cpu=250m', '--cpu-shares=512', '--pids-limit=100'];
    await withProbedPod(dd, { appFlags: flags, extra: CGROUP_PROBE }, async (pod) => {
      const app = appName(pod.dir);
      const pid = appPid(pod.dir, app);
      const host = cgroupsOf(pid);
      for (const c of V1) assert.equal(host.get(c), `/tspod/${pod.uuid}/app-${app}`, `the app's ${c} cgroup`);
      const pid1 = Number(fs.readFileSync(path.join(pod.dir, 'pid'), 'utf8'));
      for (const c of V1) assert.equal(cgroupsOf(pid1).get(c), `/tspod/${pod.uuid}/init`, `pid 1's ${c} cgroup`);
      assert.equal(read(v1Dir('memory', pod.uuid, `app-${app}`), 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      assert.equal(read(v1Dir('cpu', pod.uuid, `app-${app}`), 'cpu.cfs_quota_us'), '25000');
      assert.equal(read(v1Dir('cpu', pod.uuid, `app-${app}`), 'cpu.cfs_period_us'), '100000');
      assert.equal(read(v1Dir('cpu', pod.uuid, `app-${app}`), 'cpu.shares'), '512');
      assert.equal(read(v1Dir('pids', pod.uuid, `app-${app}`), 'pids.max'), '100');
      // Inside: its own cgroup is "/" in every hierarchy, in a cgroup namespace that is not the host's.
      const inside = pod.run.lines('cgroup');
      for (const c of V1) assert.ok(inside.some((l) => new RegExp(`^\\d+:[^:]*\\b${c}\\b[^:]*:/$`).test(l)), `${c} is / inside: ${inside.join(' | ')}`);
      assert.notEqual(pod.run.get('ns.cgroup'), fs.readlinkSync('/proc/self/ns/cgroup'));
      // No cgroup file system, and no fd of one, reaches the app.
      assert.equal(pod.run.get('cgroupfs'), '0', 'no cgroup mount in the app');
      const fds = pod.run.lines('fds').filter((l) => l.includes('->'));
      assert.ok(fds.length >= 3, fds.join('\n'));
      assert.deepEqual(fds.filter((l) => /cgroup/.test(l)), [], 'no cgroupfs fd in the app');
      // enter: the app's cgroup namespace, in which its cgroup is "/" (so it is in the app's cgroup)...
      const e = await pod.enter(undefined, CGROUP_PROBE);
      assert.equal(e.get('ns.cgroup'), pod.run.get('ns.cgroup'), 'enter joins the app cgroup namespace');
      for (const c of V1) assert.ok(e.lines('cgroup').some((l) => new RegExp(`^\\d+:[^:]*\\b${c}\\b[^:]*:/$`).test(l)), `enter: ${c} is /: ${e.lines('cgroup').join(' | ')}`);
      // ...and seen from the host while it runs: counted in the app's pids.
      const entered = dd.tspod(['enter', pod.uuid, '/bin/sh', '-c', 'echo $$ > /entered; exec sleep 30']);
      const upper = path.join(pod.dir, 'overlay', app, 'upper', 'entered');
      await waitFor(() => fs.existsSync(upper) && read(path.dirname(upper), 'entered'), 'the entered shell');
      const procs = read(v1Dir('pids', pod.uuid, `app-${app}`), 'cgroup.procs').split('\n').map(Number);
      const sleeper = procs.filter((p) => p !== pid).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep'));
      assert.ok(sleeper, `the entered process is in the app's pids cgroup: ${procs.join(' ')}`);
      for (const c of V1) assert.equal(cgroupsOf(sleeper).get(c), `/tspod/${pod.uuid}/app-${app}`, `entered: ${c}`);
      process.kill(sleeper, 'SIGKILL');
      await entered;
    });
  });

  test('defaults: a pids limit of 4096, no memory or CPU limit; the image isolators apply, flags replace them; all in the pod manifest', async () => {
    await withProbedPod(dd, {}, async (pod) => {
      const app = appName(pod.dir);
      assert.equal(read(v1Dir('pids', pod.uuid, `app-${app}`), 'pids.max'), '4096');
      assert.ok(Number(read(v1Dir('memory', pod.uuid, `app-${app}`), 'memory.limit_in_bytes')) > 2 ** 60, 'no memory limit');
      assert.equal(read(v1Dir('cpu', pod.uuid, `app-${app}`), 'cpu.cfs_quota_us'), '-1');
    });
    const aci = busyboxAci(work, 'cg-isolators', {
      exec: ['/bin/sh', '-c', 'echo probe-ready; exec sleep 3600'],
      isolators: [
        { name: 'resource/memory', value: { request: '16Mi', limit: '32Mi' } },
        { name: 'resource/cpu', value: { limit: '1.5' } },
        { name: 'os/linux/cpu-shares', value: 2048 },
      ],
    });
    for (const [flags, mem, quota] of [[[], 32 * 2 ** 20, '150000'], [['--memory=48M', '--cpu=100m'], 48_000_000, '10000']] as const) {
      const bg = startTspod(dd, ['--insecure-options=image', 'run', `--uuid-file-save=${work}/u`, aci, ...flags]);
      try {
        await bg.waitOutput(/^probe-ready$/m);
        const uuid = fs.readFileSync(`${work}/u`, 'utf8').trim();
        const expected = String(Math.floor(mem / 4096) * 4096);
        assert.equal(read(v1Dir('memory', uuid, 'app-cg-isolators'), 'memory.limit_in_bytes'), expected);
        assert.equal(read(v1Dir('cpu', uuid, 'app-cg-isolators'), 'cpu.cfs_quota_us'), quota);
        assert.equal(read(v1Dir('cpu', uuid, 'app-cg-isolators'), 'cpu.shares'), '2048');
        const manifest = JSON.parse((await ok(dd, ['cat-manifest', uuid])).stdout) as { apps: Array<{ app: { isolators: Array<{ name: string; value: unknown }> } }> };
        const iso = manifest.apps[0].app.isolators;
        assert.equal(iso.filter((i) => i.name === 'resource/memory').length, 1, JSON.stringify(iso));
        if (flags.length) assert.deepEqual(iso.find((i) => i.name === 'resource/memory')?.value, { limit: '48M' });
        await stopAndWait(dd, bg, uuid);
      } finally {
        bg.proc.kill('SIGKILL');
        await bg.exited;
      }
    }
  });

  test('an app that allocates past --memory is OOM-killed: exit 137, status and list say oom-killed; another pod and the host go on', async () => {
    await withProbedPod(dd, {}, async (other) => {
      const r = await dd.tspod(['run', `--uuid-file-save=${work}/hog`, BUSYBOX, '--memory=16Mi', '--name=hog', '--exec=/bin/sh', '--', '-c', 'x=0123456789abcdef; while :; do x=$x$x; done']);
      assert.equal(r.code, 137, describeResult(r));
      const uuid = fs.readFileSync(`${work}/hog`, 'utf8').trim();
      const st = (await ok(dd, ['status', uuid])).stdout;
      assert.match(st, /^app-hog=137$/m, st);
      assert.match(st, /^oom-killed=hog$/m, st);
      const list = JSON.parse((await ok(dd, ['list', '--format=json'])).stdout) as Array<{ name: string; apps: Array<{ name: string; exit_code: number; oom_killed?: boolean }> }>;
      const hog = list.find((p) => p.name === uuid)!.apps[0];
      assert.equal(hog.exit_code, 137);
      assert.equal(hog.oom_killed, true);
      const json = JSON.parse((await ok(dd, ['status', '--format=json', uuid])).stdout) as { apps: Array<{ oom_killed?: boolean; limits?: unknown }> };
      assert.equal(json.apps[0].oom_killed, true);
      assert.deepEqual(podCgroups(uuid), [], 'the OOM kill was recorded at exit, before the cgroups went');
      assert.deepEqual(json.apps[0].limits, { memory_bytes: 16 * 2 ** 20, cpu_millis: null, cpu_shares: null, pids: 4096 });
      // the other pod still runs; an app that exits on its own under a limit is not oom-killed
      assert.match((await ok(dd, ['status', other.uuid])).stdout, /^state=running$/m);
      const fine = await dd.tspod(['run', `--uuid-file-save=${work}/fine`, BUSYBOX, '--memory=16Mi', '--exec=/bin/sh', '--', '-c', 'exit 3']);
      assert.equal(fine.code, 3, describeResult(fine));
      const fineUuid = fs.readFileSync(`${work}/fine`, 'utf8').trim();
      assert.doesNotMatch((await ok(dd, ['status', fineUuid])).stdout, /oom-killed/);
      await ok(dd, ['rm', fineUuid]);
      await ok(dd, ['rm', uuid]);
    });
  });

  test('a fork bomb stops at --pids-limit; the host goes on; stop ends it', async () => {
    const bg = startTspod(dd, ['run', `--uuid-file-save=${work}/bomb`, BUSYBOX, '--pids-limit=30', '--name=bomb', '--exec=/bin/sh', '--', '-c', 'echo bombing; b() { b | b & }; b; exec sleep 3600']);
    try {
      await bg.waitOutput(/^bombing$/m);
      const uuid = (await waitFor(() => fs.existsSync(`${work}/bomb`) && fs.readFileSync(`${work}/bomb`, 'utf8').trim(), 'the uuid')) as string;
      const dir = v1Dir('pids', uuid, 'app-bomb');
      // The limit is hit (pids.events counts refused forks) and never passed.
      const refused = () => {
        try {
          return Number(/max (\d+)/.exec(read(dir, 'pids.events'))?.[1] ?? 0);
        } catch {
          return 0; // not started yet
        }
      };
      await waitFor(() => refused() > 0, 'a fork refused at the limit');
      assert.ok(Number(read(dir, 'pids.current')) <= 30, read(dir, 'pids.current'));
      const host = spawnSync('/bin/sh', ['-c', 'for i in 1 2 3 4 5; do /bin/true & done; wait; echo host-ok'], { encoding: 'utf8' });
      assert.equal(host.stdout.trim(), 'host-ok');
      await ok(dd, ['stop', '--force', uuid]);
      await bg.exited;
      await ok(dd, ['rm', uuid]);
      assert.deepEqual(podCgroups(uuid), []);
    } finally {
      bg.proc.kill('SIGKILL');
      await bg.exited;
    }
  });

  test('pause freezes the apps (a counter stops), status says paused, resume restarts them; stats figures move', async () => {
    const bg = startTspod(dd, ['run', `--uuid-file-save=${work}/count`, BUSYBOX, '--name=count', '--exec=/bin/sh', '--', '-c', 'echo counting; i=0; while :; do i=$((i+1)); echo $i > /count; done']);
    try {
      await bg.waitOutput(/^counting$/m);
      const uuid = fs.readFileSync(`${work}/count`, 'utf8').trim();
      const podDir = path.join(dd.path, 'pods', 'run', uuid);
      await waitFor(() => fs.existsSync(path.join(podDir, 'pid')), 'the pod is up');
      const counter = path.join(podDir, 'overlay', 'count', 'upper', 'count');
      const value = () => {
        try {
          return Number(fs.readFileSync(counter, 'utf8'));
        } catch {
          return 0;
        }
      };
      type Stats = { apps: Array<{ name: string; cpu_ns: number; memory_bytes: number; memory_peak_bytes: number; pids: number; pids_limit: number }>; network: string; interfaces: Array<{ name: string }> };
      const stats = async () => JSON.parse((await ok(dd, ['stats', '--format=json', uuid])).stdout) as Stats;
      const s1 = await stats();
      assert.equal(s1.apps[0].name, 'count');
      assert.ok(s1.apps[0].memory_bytes > 0 && s1.apps[0].memory_peak_bytes >= s1.apps[0].memory_bytes, JSON.stringify(s1));
      assert.ok(s1.apps[0].pids >= 1);
      assert.equal(s1.apps[0].pids_limit, 4096);
      assert.equal(s1.network, 'default');
      assert.ok(s1.interfaces.some((i) => i.name === 'lo') && s1.interfaces.some((i) => i.name === 'eth0'), JSON.stringify(s1.interfaces));
      await waitFor(async () => (await stats()).apps[0].cpu_ns > s1.apps[0].cpu_ns, 'CPU time moves while the app works');
      const text = (await ok(dd, ['stats', uuid])).stdout;
      assert.match(text, /^APP\s+CPU TIME\s+MEM\s+MEM PEAK\s+MEM LIMIT\s+PIDS\s+PIDS LIMIT$/m);
      assert.match(text, /^count\s+\d+\.\d{3}s\s/m);

      await waitFor(() => value() > 0, 'the counter');
      assert.equal((await ok(dd, ['pause', uuid])).stdout.trim(), `"${uuid}"`);
      assert.equal(read(v1Dir('freezer', uuid, 'app-count'), 'freezer.state'), 'FROZEN');
      assert.match((await ok(dd, ['status', uuid])).stdout, /^state=paused$/m);
      const list = JSON.parse((await ok(dd, ['list', '--format=json'])).stdout) as Array<{ name: string; state: string }>;
      assert.equal(list.find((p) => p.name === uuid)?.state, 'paused');
      const frozenAt = value();
      const cpuFrozen = (await stats()).apps[0].cpu_ns;
      await sleep(500);
      assert.equal(value(), frozenAt, 'the counter does not move while paused');
      assert.equal((await stats()).apps[0].cpu_ns, cpuFrozen, 'no CPU time while paused');
      assert.equal((await ok(dd, ['resume', uuid])).stdout.trim(), `"${uuid}"`);
      assert.match((await ok(dd, ['status', uuid])).stdout, /^state=running$/m);
      await waitFor(() => value() > frozenAt, 'the counter moves again');
      // stop works on a paused pod too (it is thawed first)
      await ok(dd, ['pause', uuid]);
      await ok(dd, ['stop', uuid]);
      const r = await bg.exited;
      assert.equal(r.code, 143, describeResult(r));
      // paused, stats, resume of a pod that is not running: one line, 254
      failsWith(await dd.tspod(['pause', uuid]), /is exited: only a running pod can be paused/);
      failsWith(await dd.tspod(['stats', uuid]), /is exited: only a running pod can be read/);
    } finally {
      bg.proc.kill('SIGKILL');
      await bg.exited;
    }
  });

  test('an exited pod leaves no cgroup (the helper removes its apps\', its init and its own at exit); those of a pod whose helper was killed go with gc', async () => {
    const r = await ok(dd, ['run', `--uuid-file-save=${work}/gone`, BUSYBOX, '--name=gone', '--exec=/bin/true']);
    assert.equal(r.code, 0);
    const a = fs.readFileSync(`${work}/gone`, 'utf8').trim();
    assert.deepEqual(podCgroups(a), [], 'nothing of the pod is left in any hierarchy at exit');
    // The outer helper SIGKILLed: nothing removes them at exit; gc does.
    const bg = startTspod(dd, ['run', `--uuid-file-save=${work}/killed`, BUSYBOX, '--name=killed', '--exec=/bin/sh', '--', '-c', 'echo ready; exec sleep 600']);
    try {
      await bg.waitOutput(/^ready$/m, 'the pod');
      const b = fs.readFileSync(`${work}/killed`, 'utf8').trim();
      await waitFor(() => fs.existsSync(path.join(dd.path, 'pods', 'run', b, 'pid')), 'the pod is up');
      bg.proc.kill('SIGKILL');
      await bg.exited;
      await waitFor(() => !(spawnSync('flock', ['-n', path.join(dd.path, 'pods', 'run', b), 'true']).status), 'the pod lock is free');
      for (const c of V1) assert.ok(fs.existsSync(v1Dir(c, b, 'init')), `${c}: the killed pod's cgroup is still there`);
      await ok(dd, ['gc', '--grace-period=0s']);
      assert.deepEqual(podCgroups(b), []);
    } finally {
      bg.proc.kill('SIGKILL');
      await bg.exited;
    }
  });

  test('an app with CAP_SYS_ADMIN and no seccomp filter that mounts its cgroup hierarchies sees only its own cgroup (no way up to the pod\'s), gains no device below it, and cannot keep the pod\'s cgroups: those it made go at exit', async () => {
    const script = [
      'mkdir -p /tmp/d /tmp/p',
      'mount -t cgroup -o devices none /tmp/d || exit 11',
      'echo "root=$(ls /tmp/d | tr "\\n" " ")"',
      'mkdir /tmp/d/esc && echo $$ > /tmp/d/esc/cgroup.procs || exit 12',
      'echo "list=$(tr "\\n" , < /tmp/d/esc/devices.list)"',
      'echo a > /tmp/d/esc/devices.allow && echo widened=yes',
      'mount -t cgroup -o pids none /tmp/p && mkdir -p /tmp/p/a/b/c || exit 13',
    ].join('; ');
    const r = await dd.tspod(['--insecure-options=seccomp', 'run', `--uuid-file-save=${work}/nest`, BUSYBOX, '--caps-retain=CAP_SYS_ADMIN', '--exec=/bin/sh', '--', '-c', script]);
    assert.equal(r.code, 0, describeResult(r));
    const uuid = fs.readFileSync(`${work}/nest`, 'utf8').trim();
    const root = /^root=(.*)$/m.exec(r.stdout)?.[1] ?? '';
    assert.match(root, /devices\.list/, r.stdout);
    assert.doesNotMatch(root, /tspod|app-|init/, 'the mount shows the app\'s own cgroup, nothing above it');
    const list = /^list=(.*)$/m.exec(r.stdout)?.[1] ?? '';
    assert.match(list, /c 1:3 rwm/, r.stdout);
    assert.doesNotMatch(list, /a \*:\* rwm/, 'a cgroup below the app\'s has its rules, not the host\'s');
    assert.doesNotMatch(r.stdout, /widened=yes/, 'and cannot widen them');
    assert.deepEqual(podCgroups(uuid), [], 'the cgroups it made below its own went with the pod at exit');
    await ok(dd, ['rm', uuid]);
  });

  test('--net=none: stats shows the pod\'s own interfaces (lo only)', async () => {
    await withProbedPod(dd, { podFlags: ['--net=none'] }, async (pod) => {
      const s = JSON.parse((await ok(dd, ['stats', '--format=json', pod.uuid])).stdout) as { network: string; interfaces: Array<{ name: string }> };
      assert.equal(s.network, 'none');
      assert.deepEqual(s.interfaces.map((i) => i.name), ['lo']);
    });
  });
});

describe('bad input: one line, exit 254, no pod', { skip: SKIP }, () => {
  const cases: Array<[string[], RegExp]> = [
    [['--memory=lots'], /^--memory: "lots" is not a quantity/],
    [['--memory=1M'], /^--memory: "1M" is below the smallest memory limit tspod accepts \(4Mi\)/],
    [['--memory=-5Mi'], /^--memory: "-5Mi" is not a quantity/],
    [['--cpu=1x'], /^--cpu: "1x" is not a quantity/],
    [['--cpu=5m'], /^--cpu: "5m" is below the smallest CPU limit/],
    [['--cpu-shares=1'], /^--cpu-shares: "1" is not an integer from 2 to 262144/],
    [['--cpu-shares=abc'], /^--cpu-shares: "abc" is not an integer/],
    [['--pids-limit=-7'], /^--pids-limit: "-7" is not a number of processes/],
    [['--pids-limit=99999999'], /^--pids-limit: "99999999" is not a number of processes/],
  ];
  for (const [flags, re] of cases) {
    test(flags.join(' '), async () => {
      const bd = makeDataDir(undefined, 'cg-bad');
      try {
        failsWith(await bd.tspod(['prepare', BUSYBOX, ...flags]), re);
        assert.deepEqual(podsTree(bd.path).filter((p) => !p.startsWith('uuids/')), []);
      } finally {
        await bd.remove();
      }
    });
  }

  test('an image isolator with a malformed limit', async () => {
    const bd = makeDataDir(undefined, 'cg-bad');
    try {
      const aci = busyboxAci(work, 'cg-bad-iso', { exec: ['/bin/true'], isolators: [{ name: 'resource/memory', value: { limit: '2k' } }] });
      failsWith(await bd.tspod(['--insecure-options=image', 'prepare', aci]), /^app cg-bad-iso: isolator resource\/memory: limit "2k" is below the smallest memory limit/);
      const aci2 = busyboxAci(work, 'cg-bad-iso2', { exec: ['/bin/true'], isolators: [{ name: 'resource/cpu', value: '500m' }] });
      failsWith(await bd.tspod(['--insecure-options=image', 'prepare', aci2]), /^app cg-bad-iso2: isolator resource\/cpu: the value must be \{"limit": QUANTITY\}/);
      assert.deepEqual(podsTree(bd.path).filter((p) => !p.startsWith('uuids/')), []);
    } finally {
      await bd.remove();
    }
  });
});

// ---------------------------------------------------------------- pure cgroup v2

/**
 * tspod in a private mount namespace in which /sys/fs/cgroup is a cgroup2 and
 * nothing else (the v1 hierarchies unmounted): the pure-v2 layout. On a hybrid
 * host every controller is bound to v1, so this cgroup2 offers none of memory,
 * cpu or pids: what it tests is the layout, the placement, the cgroup
 * namespace, the freezer (cgroup.freeze is core) and CPU time (cpu.stat is core).
 */
function v2Tspod(args: string[]): RunResult {
  return unshareTspod(V2_CGROUP_SETUP, dd.path, args);
}

describe('cgroups on pure v2 (a private mount namespace that sees only cgroup2)', { skip: SKIP || (!HAS_UNIFIED && 'no cgroup2 mounted at /sys/fs/cgroup/unified') }, () => {
  test('app and pid 1 placed in tspod/<uuid>/{app-NAME,init}; cgroup namespace; pause/resume with cgroup.freeze; stats; rm removes them', async () => {
    const controllers = read(UNIFIED, 'cgroup.controllers').split(/\s+/).filter(Boolean);
    const pod = startTspod(dd, ['run', `--uuid-file-save=${work}/v2`, BUSYBOX, '--name=v2', '--exec=/bin/sh', '--', '-c', `cat /proc/self/cgroup; echo ready; i=0; while :; do i=$((i+1)); echo $i > /count; done`], { unshareSetup: V2_CGROUP_SETUP });
    let uuid = '';
    try {
      await pod.waitOutput(/^ready$/m, 'the v2 pod');
      const out = pod.stdout();
      assert.match(out, /^0::\/$/m, out);
      uuid = fs.readFileSync(`${work}/v2`, 'utf8').trim();
      const podDir = path.join(dd.path, 'pods', 'run', uuid);
      await waitFor(() => fs.existsSync(path.join(podDir, 'pid')), 'the pod is up');
      // Seen from the host, this cgroup2 is the one at /sys/fs/cgroup/unified.
      const app = path.join(UNIFIED, 'tspod', uuid, 'app-v2');
      const pid = appPid(podDir, 'v2');
      assert.equal(cgroupsOf(pid).get(''), `/tspod/${uuid}/app-v2`);
      const pid1 = Number(fs.readFileSync(path.join(podDir, 'pid'), 'utf8'));
      assert.equal(cgroupsOf(pid1).get(''), `/tspod/${uuid}/init`);
      assert.equal(read(path.join(UNIFIED, 'tspod', uuid), 'cgroup.procs'), '', 'the pod cgroup itself holds no process');
      // v1 hierarchies are not touched in this layout
      for (const c of V1) assert.ok(!fs.existsSync(v1Dir(c, uuid)), `no v1 ${c} cgroup`);
      const stats = v2Tspod(['stats', '--format=json', uuid]);
      assert.equal(stats.code, 0, describeResult(stats));
      const s = JSON.parse(stats.stdout) as { apps: Array<{ cpu_ns: number; pids: number; pids_limit: number | null; memory_bytes: number | null }> };
      assert.ok(s.apps[0].cpu_ns > 0 && s.apps[0].pids >= 1, stats.stdout);
      if (!controllers.includes('pids')) assert.equal(s.apps[0].pids_limit, null, 'no pids controller: no limit');
      const paused = v2Tspod(['pause', uuid]);
      assert.equal(paused.code, 0, describeResult(paused));
      assert.equal(read(app, 'cgroup.freeze'), '1');
      assert.match(read(app, 'cgroup.events'), /^frozen 1$/m);
      assert.match(v2Tspod(['status', uuid]).stdout, /^state=paused$/m);
      const counter = path.join(podDir, 'overlay', 'v2', 'upper', 'count');
      const at = fs.readFileSync(counter, 'utf8');
      await sleep(300);
      assert.equal(fs.readFileSync(counter, 'utf8'), at, 'the counter stops');
      assert.equal(v2Tspod(['resume', uuid]).code, 0);
      assert.match(read(app, 'cgroup.events'), /^frozen 0$/m);
      await waitFor(() => fs.readFileSync(counter, 'utf8') !== at, 'the counter moves again');
      if (!controllers.includes('memory')) {
        // a limit this cgroup2 cannot apply: the pod does not run (one line, 254)
        const r = v2Tspod(['run', BUSYBOX, '--memory=64Mi', '--exec=/bin/true']);
        assert.equal(r.code, 254, describeResult(r));
        assert.match(r.stderr, /a memory limit needs the memory controller, which cgroup v2 at \/sys\/fs\/cgroup \(controllers: [^)]*\) does not have/);
      }
      assert.equal(v2Tspod(['stop', uuid]).code, 0);
      await pod.exited;
      assert.deepEqual(podCgroups(uuid), [], 'the pod\'s cgroups went at exit');
      await ok(dd, ['rm', uuid]);
    } finally {
      pod.proc.kill('SIGKILL');
      await pod.exited;
    }
  });
});
