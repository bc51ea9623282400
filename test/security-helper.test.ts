// The helper's side of a pod's isolation, attacked through real pods (bin/tspod,
// the busybox fixture, --pod-manifest with event handlers): no host fd reachable
// through /proc/PID/fd, the pod dies with its outer helper, handlers as root with
// the app's restrictions. Crafted plans for the same defects are in helper.test.ts.
// Real namespaces and mounts: needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { BUSYBOX, DEFAULT_CAPS, SKIP, ok, readProcess, removeScratchDirs, scratchDir, startTspod, waitFor } from './pods-util.js';

let dd: DataDir;
let busyboxId = '';

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'sec-helper');
  await ok(dd, ['fetch', BUSYBOX]);
  const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
  busyboxId = images.find((i) => i.name.endsWith(':busybox'))!.id;
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** A pod manifest of one busybox app `ev` with a host volume `v` at /v. */
function manifest(name: string, app: Record<string, unknown>, volume: string): string {
  const file = path.join(dd.path, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      acKind: 'PodManifest',
      acVersion: '0.8.11',
      apps: [{ name: 'ev', image: { id: busyboxId.slice(0, 20) }, app: { user: '0', group: '0', ...app }, mounts: [{ volume: 'v', path: '/v' }] }],
      volumes: [{ name: 'v', kind: 'host', source: volume }],
    }),
  );
  return file;
}

/** Every file named `name` below `dir` (not following symlinks). */
function findNamed(dir: string, name: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((rel) => path.basename(rel) === name).map((rel) => path.join(dir, rel));
}

/** The pids of the processes in a pid namespace (`pid:[…]`). */
function inPidNs(ns: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readlinkSync(`/proc/${p}/ns/pid`) === ns;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('helper security (real pods)', { skip: SKIP, concurrency: true }, () => {
  test('a pre-start handler’s background process finds no host fd in /proc/*/fd; pid 1 and the helper’s children are not dumpable', async () => {
    const vol = scratchDir('sec-fds-vol');
    fs.chmodSync(vol, 0o777);
    const hostDir = scratchDir('sec-fds-host'); // a host directory the pod does not see
    fs.chmodSync(hostDir, 0o777);
    const canary = `canary-${path.basename(hostDir)}`;
    const attack = `
      i=0
      while [ $i -lt 8 ]; do
        for f in /proc/[0-9]*/fd/* /proc/[0-9]*/cwd /proc/[0-9]*/root; do
          (echo x > "$f/${canary}") 2>/dev/null && echo "WROTE $f/${canary}"
          for up in '' /.. /../.. /../../.. /../../../.. /../../../../.. /../../../../../.. /../../../../../../.. /../../../../../../../.. /../../../../../../../../..; do
            (echo x > "$f$up${hostDir}/${canary}") 2>/dev/null && echo "WROTE $f$up${hostDir}/${canary}"
            (echo x > "$f$up${dd.path}/${canary}") 2>/dev/null && echo "WROTE $f$up${dd.path}/${canary}"
          done
        done
        i=$((i + 1))
      done
      ls -l /proc/[0-9]*/fd/ 2>&1
      touch /v/attack-done`;
    const check = (who: string, pid: string) => `if readlink ${pid}/fd/0 >/dev/null 2>&1; then echo ${who}=readable; else echo ${who}=denied; fi >> /v/log`;
    const file = manifest(
      'sec-fds',
      {
        exec: ['/bin/sh', '-c', `n=0; while [ ! -e /v/attack-done ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; ${check('pid1', '/proc/1')}; grep CapBnd /proc/self/status`],
        eventHandlers: [
          { name: 'pre-start', exec: ['/bin/sh', '-c', `(${attack}) > /v/attack.log 2>&1 & ${check('app-child', '/proc/$PPID')}`] },
          { name: 'post-stop', exec: ['/bin/sh', '-c', check('post-stop-runner', '/proc/$PPID')] },
        ],
      },
      vol,
    );
    const uuidFile = path.join(dd.path, 'uuid-sec-fds');
    const r = await dd.tspod(['run', `--pod-manifest=${file}`, `--uuid-file-save=${uuidFile}`]);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, new RegExp(`^CapBnd:\\s+${DEFAULT_CAPS}$`, 'm'), 'appc’s default set: no CAP_SYS_PTRACE');
    const log = fs.readFileSync(path.join(vol, 'attack.log'), 'utf8');
    assert.doesNotMatch(log, new RegExp(`^WROTE .*(${hostDir}|${dd.path})/`, 'm'), log);
    assert.doesNotMatch(log, /^WROTE \/proc\/1\//m, log);
    assert.deepEqual(fs.readdirSync(hostDir), [], 'nothing reached the host directory');
    // Anywhere in the data directory (the pod's directory, its status and lock, the
    // store) but the app's own writable layer.
    const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    const upper = path.join(dd.path, 'pods/run', uuid, 'overlay');
    assert.deepEqual(findNamed(dd.path, canary).filter((f) => !f.startsWith(upper + '/')), [], 'no canary outside the pod');
    assert.deepEqual(fs.readFileSync(path.join(vol, 'log'), 'utf8').split('\n').filter(Boolean).sort(), [
      'app-child=denied',
      'pid1=denied',
      'post-stop-runner=denied',
    ]);
  });

  test('SIGKILL to the outer helper: the pod dies at once and is exited', async () => {
    const uuidFile = path.join(dd.path, 'uuid-sec-pdeath');
    const bg = startTspod(dd, ['run', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', "trap '' TERM HUP INT; (sleep 3600 &); echo ready; exec sleep 3600"]);
    try {
      await bg.waitOutput(/^ready$/m);
      const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
      const st = await waitFor(async () => {
        const s = await ok(dd, ['status', uuid]);
        return /^pid=\d+$/m.test(s.stdout) ? s.stdout : undefined;
      }, 'the pod pid');
      const pid1 = Number(/^pid=(\d+)$/m.exec(st)![1]);
      assert.equal(readProcess(pid1)?.ppid, bg.pid, 'pid 1 is the child of the outer helper (tspod exec’d into it)');
      assert.equal(readProcess(bg.pid)?.comm, 'tspod-helper');
      const ns = fs.readlinkSync(`/proc/${pid1}/ns/pid`);
      assert.ok(inPidNs(ns).length >= 3, 'pid 1, the app and its orphan');
      bg.proc.kill('SIGKILL');
      await bg.exited;
      // (a generous bound: in practice it is immediate)
      await waitFor(() => inPidNs(ns).length === 0, 'every process of the pod to be gone', 10_000);
      const after = await ok(dd, ['status', uuid]);
      assert.match(after.stdout, /^state=exited$/m, after.stdout);
      assert.match(after.stdout, /^exited=true$/m, after.stdout);
    } finally {
      if (bg.proc.exitCode === null && bg.proc.signalCode === null) bg.proc.kill('SIGKILL');
      await bg.exited;
    }
  });

  test('pre-start and post-stop handlers run as root with the app’s restrictions; the app as its user', async () => {
    const vol = scratchDir('sec-handlers');
    fs.chmodSync(vol, 0o755); // only root may write here: the handler prepares /v/data for the app
    const record = (who: string) => `echo ${who}:$(id -u):$(id -g):$(id -G):$(grep CapBnd /proc/self/status | cut -f2):$(grep NoNewPrivs /proc/self/status | cut -f2) >> /v/log`;
    const file = manifest(
      'sec-handlers',
      {
        user: '1000',
        group: '1000',
        supplementaryGIDs: [50],
        isolators: [{ name: 'os/linux/no-new-privileges', value: true }],
        exec: ['/bin/sh', '-c', `echo app-wrote > /v/data/by-app && echo app:$(id -u):$(id -g):$(id -G):$(grep CapBnd /proc/self/status | cut -f2)`],
        eventHandlers: [
          { name: 'pre-start', exec: ['/bin/sh', '-c', `${record('pre')}; mkdir /v/data && chown 1000:1000 /v/data`] },
          { name: 'post-stop', exec: ['/bin/sh', '-c', record('post')] },
        ],
      },
      vol,
    );
    const r = await dd.tspod(['run', `--pod-manifest=${file}`]);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, new RegExp(`^app:1000:1000:1000 50:${DEFAULT_CAPS}$`, 'm'), r.stdout);
    assert.equal(fs.readFileSync(path.join(vol, 'log'), 'utf8'), `pre:0:0:0:${DEFAULT_CAPS}:1\npost:0:0:0:${DEFAULT_CAPS}:1\n`);
    assert.equal(fs.readFileSync(path.join(vol, 'data/by-app'), 'utf8'), 'app-wrote\n', 'the handler chowned the volume for the app');
  });
});

