// stage1 /enter (stage1/enter.ts): the exec of `tspod-helper enter` with the
// app's own restrictions from the pod's security/<app> file, so that enter never
// grants more than the app has; the environment is PATH, TERM and the debug
// switch only. The exec is FakeSys's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { POD_FILES, type AppSecurity } from '../../stage1/contract/pod.js';
import { main, parseEnterArgs } from '../../stage1/enter.js';
import { ExecCalled } from './fake-sys.js';
import { scratch, useFakeSys } from './util.js';

const fake = useFakeSys();

/** A pod directory with the app's security and apps-pid files; runs /enter in it. */
async function enter(sec: AppSecurity, argv: string[], env: Record<string, string | undefined> = {}): Promise<{ exec: ExecCalled; pod: string }> {
  const pod = scratch();
  for (const [file, text] of [[POD_FILES.appSecurity('web'), JSON.stringify(sec)], [POD_FILES.appPid('web'), '1234\n']]) {
    fs.mkdirSync(path.dirname(path.join(pod, file)), { recursive: true });
    fs.writeFileSync(path.join(pod, file), text);
  }
  const cwd = process.cwd();
  const saved = Object.fromEntries(Object.keys({ TSPOD_STAGE1_ROOTFS: 1, ...env }).map((k) => [k, process.env[k]]));
  Object.assign(process.env, { TSPOD_STAGE1_ROOTFS: '/stage1-rootfs' });
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.chdir(pod);
  let thrown: unknown = new Error('main returned');
  try {
    await main(argv);
  } catch (e) {
    thrown = e;
  } finally {
    process.chdir(cwd);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  assert.ok(thrown instanceof ExecCalled, String(thrown));
  return { exec: thrown, pod };
}

const SEC: AppSecurity = {
  user: 'name:www-data',
  group: '33',
  supplementaryGids: [4, 27],
  capabilities: '401',
  noNewPrivileges: true,
  oomScoreAdj: -10,
  seccomp: { mode: 'retain', errno: 'ENOSYS', errnoNumber: 38, syscalls: ['read', 'write'] },
  devices: ['c 1:3 rwm'],
  cwd: '/srv',
};

describe('stage1 /enter', () => {
  test('execs the helper’s enter with every restriction of the app, then the command', async () => {
    const { exec, pod } = await enter(SEC, ['--pid=42', '--appname=web', '--', 'sh', '-c', 'id; pwd'], { TERM: 'xterm', NODE_OPTIONS: '--inspect' });
    assert.equal(exec.file, '/stage1-rootfs/tspod-helper');
    assert.deepEqual(exec.argv, [
      'tspod-helper',
      'enter',
      '--pid=42',
      '--app-pid=1234',
      `--env-file=${path.join(pod, POD_FILES.appEnv('web'))}`,
      '--user=name:www-data',
      '--group=33',
      '--supplementary-gids=4,27',
      '--capabilities=401',
      '--no-new-privileges=1',
      '--cwd=/srv',
      '--oom-score-adj=-10',
      '--seccomp=retain:38:read,write',
      '--',
      'sh',
      '-c',
      'id; pwd',
    ]);
    assert.deepEqual(exec.env, { PATH: process.env.PATH, TERM: 'xterm' });
  });

  test('what the app does not restrict is "-"; --debug sets TSPOD_DEBUG', async () => {
    const open: AppSecurity = { user: '0', group: '0', supplementaryGids: [], noNewPrivileges: false, cwd: '/' };
    const { exec } = await enter(open, ['--debug', '--pid=42', '--appname=web', '--', 'true'], { TERM: undefined });
    assert.deepEqual(exec.argv.slice(7, 13), ['--supplementary-gids=-', '--capabilities=-', '--no-new-privileges=0', '--cwd=/', '--seccomp=-', '--']);
    assert.deepEqual(exec.env, { PATH: process.env.PATH, TSPOD_DEBUG: '1' });
    assert.equal(fake.sys.callsOf('execve').length, 1);
  });

  test('its arguments: unknown ones and missing pid, app or command are errors', () => {
    assert.deepEqual(parseEnterArgs(['--appname=a', '--pid=7', '--', 'x', '--y']), { pid: 7, app: 'a', cmd: ['x', '--y'], debug: false });
    assert.throws(() => parseEnterArgs(['--pid=7', '--appname=a', '--user=0', '--', 'x']), /^Error: unknown argument --user=0$/);
    for (const argv of [['--appname=a', '--', 'x'], ['--pid=7', '--', 'x'], ['--pid=7', '--appname=a', '--'], ['--pid=x', '--appname=a', '--', 'y']]) {
      assert.throws(() => parseEnterArgs(argv), /^Error: usage: enter --pid=PID --appname=APP -- CMD/, argv.join(' '));
    }
  });
});
