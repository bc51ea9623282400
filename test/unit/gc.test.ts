// Pod gc (stage0/gc.ts): mark (exited and aborted pods to garbage), the grace
// period and --expire-prepared, sweep (locked pods skipped; stage1 /gc for pods
// that ran; unmounting below the pod, deepest first; directory and marker gone),
// and rm. System calls: FakeSys (its locks and mount table); a pod's stage1 /gc
// is a real sh script that records how it was run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { MNT_DETACH } from '../../native/sys.js';
import { gcPods, removePod, unmountBelow, type GcOptions } from '../../stage0/gc.js';
import { PodsDir, type StateDir } from '../../stage0/pods.js';
import { giveStage1, placePod, scratch, useFakeSys } from './util.js';

const fake = useFakeSys();

const HOUR = 3_600_000;
const OPTS: GcOptions = { gracePeriodMs: 30 * 60_000, expirePreparedMs: 24 * HOUR, markOnly: false, debug: false };

interface World {
  pods: PodsDir;
  out: string[];
  err: string[];
  gc(opts?: Partial<GcOptions>): void;
  place(state: StateDir, uuid: string, stage1Gc?: string): string;
  where(uuid: string): StateDir | 'deleted';
}

function world(): World {
  const base = scratch();
  const pods = new PodsDir(path.join(base, 'pods'));
  pods.ensureLayout();
  const out: string[] = [];
  const err: string[] = [];
  return {
    pods,
    out,
    err,
    gc: (opts) => gcPods(pods.root, { ...OPTS, ...opts }, { out: (l) => out.push(l), err: (l) => err.push(l) }),
    place(state, uuid, stage1Gc) {
      const dir = placePod(pods, state, uuid);
      if (stage1Gc !== undefined) giveStage1(dir, path.join(base, `stage1-${uuid}`), { gc: stage1Gc });
      return dir;
    },
    where(uuid) {
      return pods.findState(uuid) ?? 'deleted';
    },
  };
}

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const D = 'dddddddd-0000-4000-8000-000000000004';

/** A stage1 /gc that writes its arguments, working directory and environment next to itself. */
const RECORDING_GC = '#!/bin/sh\n{ echo "args=$*"; echo "cwd=$(pwd)"; env | sort; } > "$(dirname "$0")/gc-ran"\n';

describe('gc: mark', () => {
  test('exited pods → exited-garbage, aborted prepares → garbage; running and preparing pods stay', () => {
    const w = world();
    w.place('run', A);
    const running = w.place('run', B);
    w.place('prepare', C);
    const preparing = w.place('prepare', D);
    fake.sys.holdElsewhere(running);
    fake.sys.holdElsewhere(preparing);
    w.gc({ markOnly: true });
    assert.equal(w.where(A), 'exited-garbage');
    assert.equal(w.where(B), 'run');
    assert.equal(w.where(C), 'garbage');
    assert.equal(w.where(D), 'prepare');
    assert.deepEqual(w.err.sort(), [`moving pod "${A}" to garbage`, `moving pod "${C}" to garbage`]);
    assert.deepEqual(w.out, [], '--mark-only sweeps nothing');
    // Each mark took the pod's lock (non-blocking) and let it go.
    const a = fake.sys.callsOf('flock').filter((c) => c.granted);
    assert.ok(a.every((c) => c.op === 'LOCK_EX|LOCK_NB' || c.op === 'LOCK_UN'));
  });

  test('the grace period counts from the mark: a marked pod stays until it has passed', () => {
    const w = world();
    w.place('run', A);
    w.gc();
    assert.equal(w.where(A), 'exited-garbage');
    assert.deepEqual(w.err.slice(-1), [`pod "${A}" not removed: still within grace period (30m0s)`]);
    w.gc({ now: Date.now() + OPTS.gracePeriodMs + 60_000 });
    assert.equal(w.where(A), 'deleted');
    assert.deepEqual(w.out, [`Garbage collecting pod "${A}"`]);
  });

  test('--grace-period=0 sweeps at once; garbage has no grace period', () => {
    const w = world();
    w.place('run', A);
    w.place('garbage', B);
    w.gc({ gracePeriodMs: 0 });
    assert.equal(w.where(A), 'deleted');
    assert.equal(w.where(B), 'deleted');
    assert.deepEqual(w.pods.allUuids(), [], 'markers dropped');
  });

  test('--expire-prepared: older prepared pods go to garbage and are swept; newer ones and locked ones stay', () => {
    const w = world();
    w.place('prepared', A);
    const locked = w.place('prepared', B);
    fake.sys.holdElsewhere(locked);
    w.gc();
    assert.equal(w.where(A), 'prepared', 'younger than 24h');
    w.gc({ now: Date.now() + 25 * HOUR });
    assert.equal(w.where(A), 'deleted');
    assert.equal(w.where(B), 'prepared', 'being started by run-prepared');
    assert.ok(w.err.includes(`moving expired prepared pod "${A}" to garbage`));
    w.gc({ expirePreparedMs: 0 });
    assert.equal(w.where(B), 'prepared');
    fake.sys.releaseElsewhere(locked);
    w.gc({ expirePreparedMs: 0 });
    assert.equal(w.where(B), 'deleted', '--expire-prepared=0: every prepared pod');
  });
});

describe('gc: sweep', () => {
  test('a pod being deleted by another gc (locked) is skipped', () => {
    const w = world();
    const dir = w.place('garbage', A);
    fake.sys.holdElsewhere(dir);
    w.gc();
    assert.equal(w.where(A), 'garbage');
    assert.deepEqual(w.out, []);
    fake.sys.releaseElsewhere(dir);
    w.gc();
    assert.equal(w.where(A), 'deleted');
  });

  test('a pod that ran gets its stage1 /gc: UUID argument, the pod directory as CWD, only PATH and TERM', () => {
    const w = world();
    w.place('run', A, RECORDING_GC);
    w.place('prepare', B, RECORDING_GC);
    const saved = { term: process.env.TERM, secret: process.env.TSPOD_UNIT_SECRET };
    process.env.TERM = 'xterm-unit';
    process.env.TSPOD_UNIT_SECRET = 'not for stage1';
    try {
      w.gc({ gracePeriodMs: 0 });
    } finally {
      for (const [k, v] of [['TERM', saved.term], ['TSPOD_UNIT_SECRET', saved.secret]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    assert.equal(w.where(A), 'deleted');
    const ran = fs.readFileSync(path.join(path.dirname(w.pods.root), `stage1-${A}`, 'gc-ran'), 'utf8').split('\n');
    assert.equal(ran[0], `args=${A}`);
    assert.equal(ran[1], `cwd=${w.pods.podDir('exited-garbage', A)}`);
    const env = ran.slice(2).filter((l) => l && !/^(PWD|SHLVL|_)=/.test(l)); // what sh adds itself
    assert.deepEqual(env, [`PATH=${process.env.PATH}`, 'TERM=xterm-unit']);
    assert.ok(!fs.existsSync(path.join(path.dirname(w.pods.root), `stage1-${B}`, 'gc-ran')), 'an aborted prepare never ran: no stage1 /gc');
  });

  test('a stage1 /gc that fails or cannot be found is reported, and the pod is deleted anyway', () => {
    const w = world();
    w.place('run', A, '#!/bin/sh\nexit 3\n');
    w.place('run', B);
    w.gc({ gracePeriodMs: 0 });
    assert.equal(w.where(A), 'deleted');
    assert.equal(w.where(B), 'deleted');
    assert.ok(w.err.includes(`pod "${A}": stage1 gc exited with 3`), w.err.join('\n'));
    assert.ok(w.err.some((l) => l.startsWith(`pod "${B}": skipping stage1 gc: `)), w.err.join('\n'));
  });

  test('everything mounted at or below the pod is unmounted lazily, deepest first; nothing else', () => {
    const w = world();
    const dir = w.place('garbage', A);
    const sibling = `${dir}0`; // a longer name with the pod's as prefix: not below it
    fake.sys.mounts = ['/proc', dir, path.join(dir, 'stage1/rootfs'), path.join(dir, 'sharedVolumes/with space'), path.join(dir, 'stage1/rootfs/opt/stage2/app/rootfs'), sibling];
    w.gc();
    const unmounted = fake.sys.callsOf('umount2');
    assert.deepEqual(
      unmounted.map((c) => c.target),
      [path.join(dir, 'stage1/rootfs/opt/stage2/app/rootfs'), path.join(dir, 'sharedVolumes/with space'), path.join(dir, 'stage1/rootfs'), dir],
    );
    assert.ok(unmounted.every((c) => c.flags === MNT_DETACH));
    assert.deepEqual(fake.sys.mounts, ['/proc', sibling]);
    assert.equal(w.where(A), 'deleted');
  });

  test('an unmount that fails is logged and the rest goes on', () => {
    const dir = path.join(scratch(), 'pod');
    fs.mkdirSync(dir);
    fake.sys.mounts = [dir, path.join(dir, 'a'), path.join(dir, 'a/b')];
    fake.sys.umountErrors.set(path.join(dir, 'a'), 16 /* EBUSY */);
    unmountBelow(dir);
    assert.deepEqual(fake.sys.mounts, [path.join(dir, 'a')]);
    unmountBelow(path.join(dir, 'no-such-dir')); // gone already: nothing to do
    assert.equal(fake.sys.callsOf('umount2').length, 3);
  });
});

describe('rm', () => {
  test('a prepared or exited pod is removed at once, whatever its age; its UUID is printed', () => {
    const w = world();
    w.place('prepared', A);
    w.place('run', B, RECORDING_GC);
    removePod(w.pods.root, 'aaaa', false, { out: (l) => w.out.push(l), err: (l) => w.err.push(l) });
    removePod(w.pods.root, B, false, { out: (l) => w.out.push(l), err: (l) => w.err.push(l) });
    assert.equal(w.where(A), 'deleted');
    assert.equal(w.where(B), 'deleted');
    assert.deepEqual(w.out, [`"${A}"`, `"${B}"`]);
    assert.ok(fs.existsSync(path.join(path.dirname(w.pods.root), `stage1-${B}`, 'gc-ran')), 'the exited pod’s stage1 /gc ran');
  });

  test('a running pod is refused with a hint, and left as it was', () => {
    const w = world();
    const dir = w.place('run', A);
    fake.sys.holdElsewhere(dir);
    assert.throws(
      () => removePod(w.pods.root, A, false, { out: (l) => w.out.push(l), err: (l) => w.err.push(l) }),
      (e: unknown) => e instanceof TspodError && e.code === ErrorCode.Conflict && e.message === `pod "${A}" is running: cannot remove it` && e.hint === 'stop it first (tspod stop)',
    );
    assert.equal(w.where(A), 'run');
    assert.deepEqual(w.out, []);
  });
});
