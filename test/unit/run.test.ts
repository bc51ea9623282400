// run-prepared (stage0/run.ts): prepared → run under the pod's lock, then the
// exec of stage1 /init, which FakeSys records instead of doing: its arguments,
// its environment built from nothing, the lock fd handed down. A pod that cannot
// start stays prepared. enter (stage0/enter.ts): the exec of stage1 /enter for
// a running pod's app, once the pod has written its pid. stop (stage0/stop.ts):
// the signal to the pod's pid 1, here a real child process of the test's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { enterPod } from '../../stage0/enter.js';
import { stopPod } from '../../stage0/stop.js';
import { PodsDir } from '../../stage0/pods.js';
import { runPrepared, type RunOptions } from '../../stage0/run.js';
import { POD_FILES } from '../../stage1/contract/pod.js';
import { ExecCalled } from './fake-sys.js';
import { giveStage1, placePod, scratch, useFakeSys } from './util.js';

const fake = useFakeSys();
const U = '7e57e57e-0000-4000-8000-000000000001';

function preparedPod(stage1Version?: string, apps: string[] = [], state: 'prepared' | 'run' = 'prepared'): { pods: PodsDir; dir: string; init: string; enter: string } {
  const base = scratch();
  const pods = new PodsDir(path.join(base, 'pods'));
  pods.ensureLayout();
  const dir = placePod(pods, state, U);
  const manifest = { acKind: 'PodManifest', acVersion: '0.8.11', apps: apps.map((name) => ({ name, image: { id: 'sha512-x' } })) };
  fs.writeFileSync(path.join(dir, POD_FILES.manifest), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, POD_FILES.runtimeDefaults), JSON.stringify({ net: 'none', hostname: 'from-prepare' }));
  const layer = path.join(base, 'stage1');
  giveStage1(dir, layer, { init: '#!/bin/sh\nexit 99\n', enter: '#!/bin/sh\nexit 99\n' }, stage1Version);
  return { pods, dir, init: path.join(layer, 'init'), enter: path.join(layer, 'enter') };
}

/** runPrepared, back in the test's working directory (it chdirs to the pod) whatever happens. */
function start(pods: PodsDir, opts: Partial<RunOptions> = {}): unknown {
  const cwd = process.cwd();
  try {
    runPrepared(pods.root, U.slice(0, 8), { debug: false, ...opts });
  } catch (e) {
    return e;
  } finally {
    process.chdir(cwd);
  }
  return undefined;
}

describe('run-prepared', () => {
  test('moves the pod to run under its lock and execs stage1 /init with the lock fd, flags and a clean environment', () => {
    const { pods, init } = preparedPod();
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = '--require=/evil.js';
    let e: unknown;
    try {
      e = start(pods, { hostname: 'given', localConfig: 'rel/config', insecure: { capabilities: false, paths: true, seccomp: false } });
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
    assert.ok(e instanceof ExecCalled, String(e));
    assert.equal(pods.findState(U), 'run');
    const [exec] = fake.sys.callsOf('execve');
    assert.equal(exec.file, init);
    // --refused-to: where stage1 puts the pod back if it refuses to start it (prepared again).
    assert.deepEqual(exec.argv, [init, '--net=none', `--local-config=${path.resolve('rel/config')}`, '--hostname=given', '--disable-paths', `--refused-to=${pods.podDir('prepared', U)}`, U]);
    const fd = exec.keepFds[0];
    assert.deepEqual(exec.keepFds, [fd]);
    assert.deepEqual(Object.keys(exec.env).sort(), ['PATH', 'TSPOD_LOCK_FD', ...(process.env.TERM ? ['TERM'] : [])].sort());
    assert.equal(exec.env.TSPOD_LOCK_FD, String(fd));
    // The fd it hands down holds the pod's lock (exclusive, taken without waiting).
    assert.ok(fake.sys.callsOf('flock').some((c) => c.fd === fd && c.op === 'LOCK_EX|LOCK_NB' && c.granted));
    const probe = pods.open(U)!;
    try {
      assert.equal(probe.state(), 'running');
    } finally {
      probe.close();
      fs.closeSync(fd);
    }
  });

  test('a pod being started elsewhere (locked) is refused and stays prepared', () => {
    const { pods, dir } = preparedPod();
    fake.sys.holdElsewhere(dir);
    const e = start(pods);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.Conflict && e.message === `pod "${U}" is being started by another process`, String(e));
    assert.equal(pods.findState(U), 'prepared');
    assert.deepEqual(fake.sys.callsOf('execve'), []);
  });

  test('a stage1 of another interface version is refused before the pod moves; nothing is exec’d', () => {
    const { pods } = preparedPod('2');
    const e = start(pods);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.Unsupported && /speaks stage1 interface version "2"; this tspod speaks version 1$/.test(e.message), String(e));
    assert.equal(pods.findState(U), 'prepared');
    assert.deepEqual(fake.sys.callsOf('execve'), []);
  });

  test('a pod that is not prepared is refused with its state', () => {
    const { pods } = preparedPod();
    fs.renameSync(pods.podDir('prepared', U), pods.podDir('run', U));
    const e = start(pods);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.Conflict && e.message === `pod "${U}" is not prepared` && e.hint === 'it is exited', String(e));
  });
});

describe('enter', () => {
  /** enterPod, back in the test's working directory whatever happens; what it threw. */
  async function enter(pods: PodsDir, app: string | undefined, cmd: string[]): Promise<unknown> {
    const cwd = process.cwd();
    try {
      await enterPod(pods.root, U.slice(0, 8), app, cmd, false);
    } catch (e) {
      return e;
    } finally {
      process.chdir(cwd);
    }
    return undefined;
  }

  test('waits for the pod’s pid, then execs stage1 /enter with the pid, the app and the command; PATH and TERM only', async () => {
    const { pods, dir, enter: entry } = preparedPod(undefined, ['main'], 'run');
    fake.sys.holdElsewhere(dir);
    const late = setTimeout(() => fs.writeFileSync(path.join(dir, POD_FILES.pid), '4242\n'), 300);
    const e = await enter(pods, undefined, ['ls', '-l', '--', 'x']);
    clearTimeout(late);
    assert.ok(e instanceof ExecCalled, String(e));
    const [exec] = fake.sys.callsOf('execve');
    assert.equal(exec.file, entry);
    assert.deepEqual(exec.argv, [entry, '--pid=4242', '--appname=main', '--', 'ls', '-l', '--', 'x']);
    assert.deepEqual(Object.keys(exec.env).sort(), ['PATH', ...(process.env.TERM ? ['TERM'] : [])]);
    assert.deepEqual(exec.keepFds, [], 'enter holds no pod lock');
  });

  test('a pod that is not running is refused with its state; so is an app it does not have, or no app among several', async () => {
    const { pods, dir } = preparedPod(undefined, ['a', 'b'], 'run');
    let e = await enter(pods, 'a', []);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.Conflict && e.message === `pod "${U}" is not running` && e.hint === 'it is exited', String(e));
    fake.sys.holdElsewhere(dir);
    fs.writeFileSync(path.join(dir, POD_FILES.pid), '4242');
    e = await enter(pods, undefined, []);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.BadInput && e.message === `pod "${U}" has 2 apps (a, b)`, String(e));
    e = await enter(pods, 'c', []);
    assert.ok(e instanceof TspodError && e.code === ErrorCode.NotFound && e.message === `pod "${U}" has no app "c"` && e.hint === 'its apps: a, b', String(e));
    assert.deepEqual(fake.sys.callsOf('execve'), []);
  });
});

describe('stop', () => {
  /** A running pod whose pid 1 is a child of the test's (sleep). */
  function runningPod(): { pods: PodsDir; dir: string; child: ReturnType<typeof spawn> } {
    const { pods, dir } = preparedPod(undefined, ['main'], 'run');
    fake.sys.holdElsewhere(dir);
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(dir, POD_FILES.pid), String(child.pid));
    return { pods, dir, child };
  }

  for (const [force, signal] of [[false, 'SIGTERM'], [true, 'SIGKILL']] as const) {
    test(`${force ? '--force sends SIGKILL' : 'sends SIGTERM'} to the pod’s pid 1`, async () => {
      const { pods, child } = runningPod();
      const exited = once(child, 'exit');
      try {
        assert.deepEqual(stopPod(pods.root, U.slice(0, 4), force), { uuid: U, outcome: 'stopped' });
        const [code, sig] = await exited;
        assert.deepEqual([code, sig], [null, signal]);
      } finally {
        child.kill('SIGKILL');
      }
    });
  }

  test('a pid 1 that is gone, or a pod that has exited, is already stopped; a pod never started is refused', () => {
    const { pods, dir, child } = runningPod();
    child.kill('SIGKILL');
    // No process has pid_max as its pid (never a reused one, which a signal could hit).
    fs.writeFileSync(path.join(dir, POD_FILES.pid), fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
    assert.deepEqual(stopPod(pods.root, U, false), { uuid: U, outcome: 'already-stopped' }, 'ESRCH');
    fake.sys.releaseElsewhere(dir);
    assert.deepEqual(stopPod(pods.root, U, false), { uuid: U, outcome: 'already-stopped' }, 'exited');
    fs.renameSync(dir, pods.podDir('prepared', U));
    assert.throws(() => stopPod(pods.root, U, false), (e: unknown) => e instanceof TspodError && e.code === ErrorCode.Conflict && e.message === `pod "${U}" is prepared: it has not been started`);
  });

  test('a running pod without its pid yet is refused for now', () => {
    const { pods, dir, child } = runningPod();
    child.kill('SIGKILL');
    fs.rmSync(path.join(dir, POD_FILES.pid));
    assert.throws(() => stopPod(pods.root, U, false), (e: unknown) => e instanceof TspodError && e.code === ErrorCode.Conflict && /is starting: try again in a moment$/.test(e.message));
  });
});
