// A pod's life (issue 3): exit codes, signals, orphans, --interactive, and the
// commands that act on pods (stop, status, list, cat-manifest, rm, gc, export)
// with rkt's outputs, UUID prefixes and --uuid-file. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, mountsUnder, REPO_ROOT, TSPOD_BIN, type DataDir, type RunResult } from './harness/index.js';
import { BUSYBOX, SKIP, descendants, ok, podsTree, readProcess, startTspod, stopAndWait, waitFor, type BackgroundPod } from './pods-util.js';

let dd: DataDir;

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'pods-life');
  await ok(dd, ['fetch', BUSYBOX]);
  const prepared = await ok(dd, ['prepare', '--quiet', BUSYBOX]);
  await ok(dd, ['rm', prepared.stdout.trim()]);
});
after(async () => {
  if (dd) await dd.remove();
});

/** An app that reports TERM, INT and HUP and loops until told to stop. */
const TRAPS = `trap 'echo got-TERM; exit 10' TERM; trap 'echo got-INT; exit 11' INT; trap 'echo got-HUP' HUP; echo ready; while :; do sleep 0.05; done`;

/** `run` in the background with --uuid-file-save; resolves once stdout matches `ready`. */
async function startRun(podArgs: string[], d = dd, ready = /^ready$/m): Promise<{ bg: BackgroundPod; uuid: string; uuidFile: string }> {
  const uuidFile = path.join(d.path, `uuid-${Math.random().toString(36).slice(2)}`);
  const bg = startTspod(d, ['run', `--uuid-file-save=${uuidFile}`, ...podArgs]);
  try {
    await bg.waitOutput(ready);
  } catch (e) {
    bg.proc.kill('SIGKILL');
    await bg.exited;
    throw e;
  }
  return { bg, uuid: fs.readFileSync(uuidFile, 'utf8').trim(), uuidFile };
}

function statusLines(r: RunResult): Map<string, string> {
  return new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('pod life', { skip: SKIP, concurrency: true }, () => {
  test("exit codes: the app's, 128+N for a signal, the first failing app's in a multi-app pod (the others stopped), 254 for tspod's own failures", async () => {
    const viaUuidFile = (async () => {
      const file = path.join(dd.path, 'uuid-run-prepared');
      await ok(dd, ['prepare', '--quiet', `--uuid-file-save=${file}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'exit 4']);
      return dd.tspod(['run-prepared', `--uuid-file=${file}`]);
    })();
    const [seven, killed, multi, stage1Failure] = await Promise.all([
      dd.tspod(['run', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'exit 7']),
      dd.tspod(['run', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'kill -9 $$']),
      (async () => {
        const uuidFile = path.join(dd.path, 'uuid-multi-exit');
        const r = await dd.tspod([
          'run',
          `--uuid-file-save=${uuidFile}`,
          '--volume=sync,kind=empty',
          '--mount=volume=sync,target=/sync', // before any image: every app
          // `ok` leaves its pid, so that `fails` can wait until it is gone (reaped
          // with its 0) rather than race its start on a loaded machine
          BUSYBOX, '--name=ok', '--exec=/bin/sh', '--', '-c', 'echo $$ > /sync/ok.t && mv /sync/ok.t /sync/ok; exit 0', '---',
          // fails once `late` is ready for its SIGTERM and `ok` has ended
          BUSYBOX, '--name=fails', '--exec=/bin/sh', '--', '-c', 'while [ ! -f /sync/late ] || [ ! -f /sync/ok ] || kill -0 "$(cat /sync/ok)" 2>/dev/null; do sleep 0.02; done; exit 5', '---',
          BUSYBOX, '--name=sleeper', '--exec=/bin/sleep', '--', '3600', '---',
          BUSYBOX, '--name=late', '--exec=/bin/sh', '--', '-c', "trap 'exit 6' TERM; touch /sync/late; while :; do sleep 0.05; done",
        ]);
        return { r, uuid: fs.readFileSync(uuidFile, 'utf8').trim() };
      })(),
      dd.tspod(['run', '--net=bogus', BUSYBOX, '--exec=/bin/true']),
    ]);
    assert.equal(seven.code, 7, describeResult(seven));
    const rp = await viaUuidFile;
    assert.equal(rp.code, 4, `run-prepared --uuid-file: the app's code\n${describeResult(rp)}`);
    assert.equal(killed.code, 137, `killed by SIGKILL: 128+9\n${describeResult(killed)}`);
    assert.equal(multi.r.code, 5, `the first failing app's code\n${describeResult(multi.r)}`);
    const st = statusLines(await ok(dd, ['status', multi.uuid]));
    assert.equal(st.get('state'), 'exited');
    assert.equal(st.get('app-ok'), '0');
    assert.equal(st.get('app-fails'), '5');
    assert.equal(st.get('app-sleeper'), '143', 'the other apps were stopped (SIGTERM)');
    assert.equal(st.get('app-late'), '6', 'an app that fails after the first one does not decide the code');
    const json = JSON.parse((await ok(dd, ['status', '--format=json', multi.uuid])).stdout) as { apps: Array<{ name: string; state: string; exit_code: number; started_at: number; finished_at: number }> };
    for (const a of json.apps) {
      assert.equal(a.state, 'exited', a.name);
      assert.ok(a.started_at > 0 && a.finished_at >= a.started_at, `${a.name}: started_at and finished_at (ns): ${JSON.stringify(a)}`);
    }
    assert.deepEqual(json.apps.map((a) => [a.name, a.exit_code]), [['ok', 0], ['fails', 5], ['sleeper', 143], ['late', 6]]);
    assert.equal(stage1Failure.code, 254, describeResult(stage1Failure));
    assert.equal(stage1Failure.stderr.trim().split('\n').length, 1, `one line:\n${stage1Failure.stderr}`);
    assert.match(stage1Failure.stderr, /--net=bogus/);
  });

  test('signals: tspod stop (SIGTERM), stop --force (SIGKILL), SIGTERM/SIGINT/SIGHUP to the run process are forwarded', async () => {
    const app = [BUSYBOX, '--exec=/bin/sh', '--', '-c', TRAPS];
    await Promise.all([
      (async () => {
        const { bg, uuid, uuidFile } = await startRun(app);
        const stop = await ok(dd, ['stop', uuid.slice(0, 8)]);
        assert.equal(stop.stdout, `"${uuid}"\n`, 'stop prints the quoted UUID');
        const r = await bg.exited;
        assert.equal(r.code, 10, describeResult(r));
        assert.match(r.stdout, /^got-TERM$/m);
        const again = await ok(dd, ['stop', `--uuid-file=${uuidFile}`]);
        assert.equal(again.stdout, `pod "${uuid}" is already stopped\n`, 'not an error');
      })(),
      (async () => {
        const { bg, uuid } = await startRun(app);
        await ok(dd, ['stop', '--force', uuid]);
        const r = await bg.exited;
        assert.equal(r.code, 137, `--force kills at once\n${describeResult(r)}`);
        assert.doesNotMatch(r.stdout, /got-TERM/);
        assert.equal(statusLines(await ok(dd, ['status', uuid])).get('state'), 'exited');
      })(),
      ...(
        [
          ['SIGTERM', 10, /^got-TERM$/m],
          ['SIGINT', 11, /^got-INT$/m],
        ] as const
      ).map(async ([sig, code, re]) => {
        const { bg } = await startRun(app);
        bg.proc.kill(sig);
        const r = await bg.exited;
        assert.equal(r.code, code, `${sig} forwarded\n${describeResult(r)}`);
        assert.match(r.stdout, re);
      }),
      (async () => {
        const { bg, uuid } = await startRun(app);
        bg.proc.kill('SIGHUP');
        await bg.waitOutput(/^got-HUP$/m);
        assert.equal(statusLines(await ok(dd, ['status', uuid])).get('state'), 'running', 'SIGHUP is only forwarded');
        const r = await stopAndWait(dd, bg, uuid);
        assert.equal(r.code, 10, describeResult(r));
      })(),
    ]);
  });

  test('orphans: pid 1 reaps them, and kills what is left once the apps are done', async () => {
    const script = `
sh -c 'sleep 3600 & echo $! > /tmp/orphan'
o=$(cat /tmp/orphan)
echo "orphan-ppid=$(cut -d' ' -f4 /proc/$o/stat)"
kill $o
# a zombie would keep /proc/$o forever: pid 1 must reap it
while [ -e /proc/$o ]; do sleep 0.02; done
echo orphan-reaped
sh -c 'sleep 3600 & echo $! > /tmp/left'
echo "left=$(cat /tmp/left)"`;
    const uuidFile = path.join(dd.path, 'uuid-orphans');
    const r = await dd.tspod(['run', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', script]);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /^orphan-ppid=1$/m, 'an orphan is re-parented to the pod pid 1');
    assert.match(r.stdout, /^orphan-reaped$/m);
    assert.match(r.stdout, /^left=\d+$/m);
    const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    const podDir = path.join(dd.path, 'pods/run', uuid);
    const stray = fs
      .readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map((n) => readProcess(Number(n)))
      .filter((p) => p && (p.cmdline.includes(podDir) || p.cmdline === 'sleep 3600'));
    assert.deepEqual(stray.filter((p) => p!.cmdline.includes(podDir)), [], 'nothing of the pod is left running');
  });

  test('--interactive: the terminal passes through to the one app', async () => {
    const cmd = `${TSPOD_BIN} --dir=${dd.path} run --interactive ${BUSYBOX} --exec /bin/sh -- -c 'tty; echo tty-rc=$?; read line; echo "got:$line"; exit 3'`;
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        // type only once the app is waiting for it
        if (/tty-rc=\d/.test(out) && !p.stdin.writableEnded) p.stdin.end('typed-input\n');
      });
      p.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
      p.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /^\/dev\/(console|pts\/\d+|tty\S*)\r?$/m, `tty names a terminal:\n${r.out}`);
    assert.match(r.out, /tty-rc=0/);
    assert.match(r.out, /got:typed-input/, 'typed input reaches the app');
  });

  test('prepare/run-prepared/status/list/cat-manifest/stop/rm: rkt outputs; UUID prefixes and --uuid-file', async () => {
    const uuidFile = path.join(dd.path, 'uuid-commands');
    const loop = ['--exec=/bin/sh', '--', '-c', 'echo ready-$AC_APP_NAME; exec sleep 3600', '---'];
    const prep = await ok(dd, ['prepare', '--quiet', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--name=alpha', ...loop, BUSYBOX, '--name=beta', ...loop]);
    const uuid = prep.stdout.trim();
    assert.match(prep.stdout, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/, 'prepare prints only the UUID');
    assert.equal(fs.readFileSync(uuidFile, 'utf8').trim(), uuid, '--uuid-file-save');
    const short = uuid.slice(0, 8);

    let st = statusLines(await ok(dd, ['status', short]));
    assert.equal(st.get('state'), 'prepared');
    assert.match(st.get('created')!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})? [+-]\d{4} \w+$/);
    assert.equal(st.get('exited'), 'false');
    assert.ok(!st.has('pid') && !st.has('started'));

    for (const args of [['cat-manifest', short], ['cat-manifest', `--uuid-file=${uuidFile}`]]) {
      const m = JSON.parse((await ok(dd, args)).stdout) as { acKind: string; apps: Array<{ name: string; image: { id: string } }> };
      assert.equal(m.acKind, 'PodManifest');
      assert.deepEqual(m.apps.map((a) => a.name), ['alpha', 'beta']);
    }

    const bg = startTspod(dd, ['run-prepared', uuid.slice(0, 6)]);
    try {
      await bg.waitOutput(/ready-alpha[\s\S]*ready-beta|ready-beta[\s\S]*ready-alpha/);
      st = statusLines(await ok(dd, ['status', `--uuid-file=${uuidFile}`]));
      assert.equal(st.get('state'), 'running');
      assert.ok(st.has('started'));
      assert.equal(st.get('exited'), 'false');
      const pid = Number(st.get('pid'));
      assert.equal(readProcess(pid)?.ppid, bg.pid, 'pid= is the pod pid 1, child of the outer helper');
      assert.ok(![...st.keys()].some((k) => k.startsWith('app-')), 'no app codes while running');

      const json = JSON.parse((await ok(dd, ['status', '--format=json', short])).stdout) as Record<string, unknown> & { apps: Array<Record<string, unknown>> };
      assert.equal(json.name, uuid);
      assert.equal(json.state, 'running');
      assert.deepEqual(json.app_names, ['alpha', 'beta']);
      assert.deepEqual(json.apps.map((a) => [a.name, a.state]), [['alpha', 'running'], ['beta', 'running']]);
      assert.ok(typeof json.created_at === 'number' && typeof json.started_at === 'number');

      // list: one row per app, pod fields on the first row only.
      const list = await ok(dd, ['list']);
      const lines = list.stdout.split('\n');
      assert.deepEqual(lines[0].split(/\t+/), ['UUID', 'APP', 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'NETWORKS']);
      const i = lines.findIndex((l) => l.startsWith(short));
      assert.ok(i > 0, list.stdout);
      assert.deepEqual(lines[i].split(/\t+/).slice(0, 4), [short, 'alpha', 'localhost/oci:busybox', 'running']);
      assert.deepEqual(lines[i + 1].split(/\t+/).filter(Boolean), ['beta', 'localhost/oci:busybox']);
      const noLegend = await ok(dd, ['list', '--no-legend']);
      assert.ok(!noLegend.stdout.includes('UUID'), noLegend.stdout);
      assert.ok(noLegend.stdout.split('\n').some((l) => l.startsWith(short)));
      const full = await ok(dd, ['list', '--full']);
      assert.deepEqual(full.stdout.split('\n')[0].split(/\t+/), ['UUID', 'APP', 'IMAGE NAME', 'IMAGE ID', 'STATE', 'CREATED', 'STARTED', 'NETWORKS']);
      const fullRow = full.stdout.split('\n').find((l) => l.startsWith(uuid))!.split(/\t+/);
      assert.match(fullRow[3], /^sha256-[0-9a-f]{12}$/);
      assert.match(fullRow[5], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})? [+-]\d{4} \w+$/);
      const listJson = JSON.parse((await ok(dd, ['list', '--format=json'])).stdout) as Array<{ name: string; state: string }>;
      assert.equal(listJson.find((p) => p.name === uuid)?.state, 'running');

      // enter by prefix and by --uuid-file
      const viaPrefix = await ok(dd, ['enter', '--app=alpha', short, '/bin/sh', '-c', 'echo in-$AC_APP_NAME']);
      assert.equal(viaPrefix.stdout, 'in-alpha\n');
      const viaFile = await ok(dd, ['enter', '--app=beta', `--uuid-file=${uuidFile}`, '/bin/sh', '-c', 'echo in-$AC_APP_NAME']);
      assert.equal(viaFile.stdout, 'in-beta\n');
      const defaultShell = await ok(dd, ['enter', '--app=alpha', short], { input: 'echo via-$AC_APP_NAME-shell\n' });
      assert.equal(defaultShell.stdout, 'via-alpha-shell\n');
      assert.match(defaultShell.stderr, /no command specified, assuming "\/bin\/sh"/);

      // rm refuses a running pod; status --wait=DURATION gives up on one.
      const rm = await dd.tspod(['rm', short]);
      assert.equal(rm.code, 254, describeResult(rm));
      assert.match(rm.stderr, /is running/);
      assert.ok(fs.existsSync(path.join(dd.path, 'pods/run', uuid)));
      const waited = await dd.tspod(['status', '--wait=300ms', short]);
      assert.equal(waited.code, 254, describeResult(waited));
      assert.match(waited.stderr, /did not exit within 300ms/);

      // status --wait (bare: the next word is the UUID) returns once the pod has exited.
      const waiting = dd.tspod(['status', '--wait', short]);
      const stop = await ok(dd, ['stop', `--uuid-file=${uuidFile}`]);
      assert.equal(stop.stdout, `"${uuid}"\n`);
      const w = await waiting;
      assert.equal(w.code, 0, describeResult(w));
      st = statusLines(w);
      assert.equal(st.get('state'), 'exited');
      assert.equal(st.get('exited'), 'true');
      assert.equal(st.get('app-alpha'), '143');
      assert.equal(st.get('app-beta'), '143');
      assert.equal((await bg.exited).code, 143);
    } finally {
      await stopAndWait(dd, bg, uuid, true);
    }

    const rm = await ok(dd, ['rm', `--uuid-file=${uuidFile}`]);
    assert.equal(rm.stdout, `"${uuid}"\n`);
    assert.deepEqual(podsTree(dd.path).filter((p) => p.includes(uuid)), [], 'the pod and its UUID marker are gone');
    const gone = await dd.tspod(['status', short]);
    assert.equal(gone.code, 254);
    assert.equal(gone.stderr, `tspod: no matches found for "${short}": see tspod list\n`);
  });

  test('states and gc: SIGKILLed helper is exited at once; gc never removes a running pod; --mark-only, --grace-period, --expire-prepared; a pod whose mounts are gone is cleaned', async (t) => {
    // Its own data directory: gc here must not sweep the other tests' pods.
    const gd = makeDataDir(t, 'pods-gc');
    await ok(gd, ['fetch', BUSYBOX]);
    const loop = [BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo ready; exec sleep 3600'];
    const running = await startRun(loop, gd);
    const killed = await startRun(loop, gd);
    try {
      const exited = (await ok(gd, ['run', `--uuid-file-save=${path.join(gd.path, 'uuid-gc-exited')}`, BUSYBOX, '--exec=/bin/true'])) && fs.readFileSync(path.join(gd.path, 'uuid-gc-exited'), 'utf8').trim();
      const prepared = (await ok(gd, ['prepare', '--quiet', BUSYBOX])).stdout.trim();

      // SIGKILL the helper (outer process and pod pid 1): the pod is exited at once.
      const killedDir = path.join(gd.path, 'pods/run', killed.uuid);
      const pid1 = Number(fs.readFileSync(path.join(killedDir, 'pid'), 'utf8'));
      const tree = descendants(killed.bg.pid);
      assert.ok(tree.some((p) => p.pid === pid1));
      process.kill(killed.bg.pid, 'SIGKILL');
      process.kill(pid1, 'SIGKILL');
      await killed.bg.exited;
      await waitFor(() => !fs.existsSync(`/proc/${pid1}`), 'pid 1 to be gone');
      const st = statusLines(await ok(gd, ['status', killed.uuid]));
      assert.equal(st.get('state'), 'exited', 'no lock holder: exited, with no waiting');
      assert.deepEqual(
        mountsUnder([killedDir]).filter((m) => !(m.fsType === 'nsfs' && m.mountPoint === path.join(killedDir, 'netns'))),
        [],
        'no mount of the pod is left on the host but its network namespace (gc releases it)',
      );

      const where = () => new Map(podsTree(gd.path).filter((p) => !p.startsWith('uuids/')).map((p) => [p.split('/')[1], p.split('/')[0]]));
      const markOnly = await ok(gd, ['gc', '--mark-only']);
      let w = where();
      assert.equal(w.get(running.uuid), 'run', 'a running pod is never marked');
      assert.equal(w.get(exited), 'exited-garbage');
      assert.equal(w.get(killed.uuid), 'exited-garbage');
      assert.equal(w.get(prepared), 'prepared');
      assert.match(markOnly.stderr, new RegExp(`moving pod "${exited}" to garbage`));
      assert.equal(markOnly.stdout, '', '--mark-only deletes nothing');

      const graced = await ok(gd, ['gc']);
      assert.match(graced.stderr, new RegExp(`pod "${exited}" not removed: still within grace period \\(30m0s\\)`));
      w = where();
      assert.equal(w.get(exited), 'exited-garbage');
      assert.equal(w.get(prepared), 'prepared', 'prepared pods expire after 24h by default');

      const swept = await ok(gd, ['gc', '--grace-period=0s']);
      assert.match(swept.stdout, new RegExp(`Garbage collecting pod "${exited}"`));
      assert.match(swept.stdout, new RegExp(`Garbage collecting pod "${killed.uuid}"`));
      w = where();
      assert.ok(!w.has(exited) && !w.has(killed.uuid), 'exited pods are removed, the SIGKILLed one too');
      assert.equal(w.get(running.uuid), 'run');
      assert.equal(w.get(prepared), 'prepared');

      await ok(gd, ['gc', '--grace-period=0s', '--expire-prepared=0s']);
      w = where();
      assert.ok(!w.has(prepared), '--expire-prepared=0s removes prepared pods');
      assert.equal(w.get(running.uuid), 'run', 'never a running pod');
      assert.equal(statusLines(await ok(gd, ['status', running.uuid])).get('state'), 'running');
      assert.deepEqual(
        podsTree(gd.path).filter((p) => p.startsWith('uuids/')).map((p) => p.split('/')[2]).filter((u) => [exited, killed.uuid, prepared].includes(u)),
        [],
        'UUID markers go with the pods',
      );
    } finally {
      await stopAndWait(gd, running.bg, running.uuid);
      await stopAndWait(gd, killed.bg, undefined, true);
    }
    await ok(gd, ['gc', '--grace-period=0s']);
    assert.ok(!fs.existsSync(path.join(gd.path, 'pods/exited-garbage', running.uuid)) && !fs.existsSync(path.join(gd.path, 'pods/run', running.uuid)));
  });

  test("export: an exited pod's app as an ACI that fetch takes back, with the app's changes", async () => {
    const uuidFile = path.join(dd.path, 'uuid-export');
    await ok(dd, ['run', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--name=exp', '--exec=/bin/sh', '--', '-c', 'echo changed > /etc/motd; echo new > /new-file; rm /bin/hostname']);
    const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    const out = path.join(dd.path, 'exported.aci');
    await ok(dd, ['export', uuid.slice(0, 8), out]);
    const exists = await dd.tspod(['export', `--uuid-file=${uuidFile}`, out]);
    assert.equal(exists.code, 254, 'an existing output needs --overwrite');
    await ok(dd, ['export', '--overwrite', `--uuid-file=${uuidFile}`, out]);
    const id = (await ok(dd, ['fetch', out])).stdout.trim();
    assert.match(id, /^sha512-[0-9a-f]+$/);
    const r = await ok(dd, ['run', id, '--exec=/bin/sh', '--', '-c', 'cat /etc/motd /new-file; test -e /bin/hostname && echo hostname-still-there || echo hostname-gone']);
    assert.equal(r.stdout, 'changed\nnew\nhostname-gone\n');

    // Only exited pods can be exported.
    const { bg, uuid: live } = await startRun([BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo ready; exec sleep 3600']);
    try {
      const refused = await dd.tspod(['export', live, path.join(dd.path, 'live.aci')]);
      assert.equal(refused.code, 254, describeResult(refused));
      assert.match(refused.stderr, /only exited pods can be exported/);
    } finally {
      await stopAndWait(dd, bg, live);
    }
  });
});
