// Looking up, stopping and removing one pod costs the same with 5 pods on disk as
// with 5,000 (issue 3; rkt slowed to minutes with thousands of pods): the
// directory entries tspod reads, counted as getdents64 calls under strace (no
// timing). And dist/'s systemd units pass `systemd-analyze verify`. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDataDir, makeTempDir, REPO_ROOT, TSPOD_BIN, type DataDir } from './harness/index.js';
import { BUSYBOX, SKIP, ok } from './pods-util.js';

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
const hasSystemd = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

/** Pods on disk the way prepare makes them: pods/prepared/U and pods/uuids/<2 hex>/U. */
function fakePods(dataDir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const u = randomUUID();
    fs.mkdirSync(path.join(dataDir, 'pods/prepared', u), { mode: 0o750 });
    fs.writeFileSync(path.join(dataDir, 'pods/prepared', u, 'pod-created'), '');
    fs.mkdirSync(path.join(dataDir, 'pods/uuids', u.slice(0, 2)), { recursive: true, mode: 0o750 });
    fs.writeFileSync(path.join(dataDir, 'pods/uuids', u.slice(0, 2), u), '');
  }
}

/** getdents64 calls made by `tspod ARGS` and every process it starts. */
function getdents(dataDir: string, args: string[]): { calls: number; code: number | null; out: string } {
  const report = path.join(dataDir, `strace-${randomUUID()}`);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
  const r = spawnSync('strace', ['-f', '-qq', '-c', '-e', 'trace=getdents64', '-o', report, TSPOD_BIN, `--dir=${dataDir}`, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env,
  });
  const table = fs.readFileSync(report, 'utf8');
  fs.rmSync(report);
  const row = table.split('\n').find((l) => /\sgetdents64$/.test(l));
  // columns: % time, seconds, usecs/call, calls, [errors,] syscall
  const calls = row ? Number(row.trim().split(/\s+/)[3]) : 0;
  return { calls, code: r.status, out: `${r.stdout}${r.stderr}` };
}

let small: DataDir;
let big: DataDir;

before(async () => {
  if (SKIP || !hasStrace) return;
  small = makeDataDir(undefined, 'pods-5');
  big = makeDataDir(undefined, 'pods-5000');
  await Promise.all([small, big].map((d) => ok(d, ['fetch', BUSYBOX])));
});
after(async () => {
  // 5000 fake pods would make gc's sweep slow for nothing: drop them first.
  for (const d of [small, big]) if (d) fs.rmSync(path.join(d.path, 'pods'), { recursive: true, force: true });
  await Promise.all([small, big].filter(Boolean).map((d) => d.remove()));
});

describe('pods at scale', { skip: SKIP || (!hasStrace && 'strace is missing (make deps)') }, () => {
  test('status, stop and rm of one pod read as many directory entries with 5 pods as with 5000', async () => {
    // An exited pod to look up and stop, and a prepared one to remove (its
    // directory's content does not depend on how far an app got).
    const targets = await Promise.all(
      [small, big].map(async (d) => {
        const file = path.join(d.path, 'uuid-target');
        await ok(d, ['run', `--uuid-file-save=${file}`, BUSYBOX, '--exec=/bin/true']);
        const prepared = (await ok(d, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
        return { exited: fs.readFileSync(file, 'utf8').trim(), prepared };
      }),
    );
    fakePods(small.path, 3);
    fakePods(big.path, 4998);
    const count = (d: DataDir) => fs.readdirSync(path.join(d.path, 'pods/prepared')).length + fs.readdirSync(path.join(d.path, 'pods/run')).length;
    assert.equal(count(small), 5);
    assert.equal(count(big), 5000);

    const measure = (i: number, args: (t: { exited: string; prepared: string }) => string[]) => {
      const d = [small, big][i];
      const r = getdents(d.path, args(targets[i]));
      assert.equal(r.code, 0, `tspod ${args(targets[i]).join(' ')}: ${r.out}`);
      return r.calls;
    };
    const ops: Array<[string, (t: { exited: string; prepared: string }) => string[]]> = [
      ['status by prefix', (t) => ['status', t.exited.slice(0, 6)]],
      ['stop by prefix (already stopped)', (t) => ['stop', t.exited.slice(0, 6)]],
      ['cat-manifest by full UUID', (t) => ['cat-manifest', t.exited]],
      ['rm by prefix', (t) => ['rm', t.prepared.slice(0, 6)]],
    ];
    for (const [what, args] of ops) {
      const few = measure(0, args);
      const many = measure(1, args);
      assert.ok(few > 0, `${what}: strace counted the reads`);
      assert.equal(many, few, `${what}: ${few} getdents64 calls with 5 pods, ${many} with 5000`);
    }
    for (let i = 0; i < 2; i++) assert.ok(!fs.existsSync(path.join([small, big][i].path, 'pods/garbage', targets[i].prepared)), 'rm removed the pod');
  });
});

describe('dist', { skip: !hasSystemd && 'systemd-analyze is missing' }, () => {
  test('systemd-analyze verify accepts tspod-gc.service and tspod-gc.timer (ExecStart pointed at bin/tspod)', () => {
    const dir = makeTempDir('dist-units');
    try {
      const service = fs.readFileSync(path.join(REPO_ROOT, 'dist/tspod-gc.service'), 'utf8');
      assert.match(service, /^ExecStart=\S*tspod gc\b/m);
      fs.writeFileSync(path.join(dir, 'tspod-gc.service'), service.replace(/^ExecStart=\S+/gm, `ExecStart=${TSPOD_BIN}`));
      fs.copyFileSync(path.join(REPO_ROOT, 'dist/tspod-gc.timer'), path.join(dir, 'tspod-gc.timer'));
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'tspod-gc.service'), path.join(dir, 'tspod-gc.timer')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim(), '', 'no warnings');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
