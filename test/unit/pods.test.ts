// The pod state machine (stage0/pods.ts; docs/architecture.md, "The pod state
// machine"): state = directory + lock, moves by rename, UUID lookup by bucket.
// The locks are FakeSys's (flock's rules; "another process" is holdElsewhere).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { PodsDir, STATE_DIRS, type StateDir } from '../../stage0/pods.js';
import { placePod, scratch, useFakeSys } from './util.js';

const fake = useFakeSys();

function podsDir(): PodsDir {
  const pods = new PodsDir(path.join(scratch(), 'pods'));
  pods.ensureLayout();
  return pods;
}

function rejects(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof TspodError && e.code === code && message.test(e.message));
}

const U1 = '1a2b3c4d-0000-4000-8000-000000000001';
const U2 = '1a2b3c4d-0000-4000-8000-000000000002';

describe('pods: state machine', () => {
  test('create: embryo → prepare, locked by its creator, marker written; nothing left in embryo', () => {
    const pods = podsDir();
    const pod = pods.create();
    try {
      assert.equal(pod.where, 'prepare');
      assert.ok(fs.existsSync(pod.dir));
      assert.deepEqual(pods.inState('embryo'), []);
      assert.deepEqual(pods.allUuids(), [pod.uuid]);
      assert.deepEqual(fake.sys.callsOf('flock')[0], { call: 'flock', fd: pod.fd, op: 'LOCK_EX|LOCK_NB', granted: true });
      // Another process (another fd) sees it preparing; once the creator lets go, an aborted prepare.
      const other = pods.open(pod.uuid)!;
      assert.equal(other.state(), 'preparing');
      pod.unlock();
      assert.equal(other.state(), 'aborted prepare');
      other.close();
    } finally {
      pod.close();
    }
  });

  test('every (directory, lock) pair has rkt’s state name', () => {
    const pods = podsDir();
    const want: Record<StateDir, [string, string]> = {
      embryo: ['embryo', 'embryo'],
      prepare: ['aborted prepare', 'preparing'],
      prepared: ['prepared', 'prepared'],
      run: ['exited', 'running'],
      'exited-garbage': ['exited garbage', 'exited deleting'],
      garbage: ['garbage', 'deleting'],
    };
    STATE_DIRS.forEach((state, i) => {
      const uuid = `0${i}000000-0000-4000-8000-000000000000`;
      placePod(pods, state, uuid);
      const pod = pods.open(uuid)!;
      try {
        assert.equal(pod.where, state);
        assert.equal(pod.state(), want[state][0], `${state}, unlocked`);
        fake.sys.holdElsewhere(pod.dir);
        assert.equal(pod.state(), want[state][1], `${state}, locked elsewhere`);
        assert.equal(pod.tryLock(), false, `${state}: the lock is taken`);
        fake.sys.releaseElsewhere(pod.dir);
        assert.equal(pod.tryLock(), true);
      } finally {
        pod.close();
      }
    });
  });

  test('a shared probe does not disturb a shared holder; the lock follows the pod through renames', () => {
    const pods = podsDir();
    placePod(pods, 'prepared', U1);
    const pod = pods.open(U1)!;
    const probe = pods.open(U1)!;
    try {
      fake.sys.holdElsewhere(pod.dir, 'sh'); // status/list probing at the same time
      assert.equal(probe.isLockedElsewhere(), false);
      fake.sys.releaseElsewhere(pod.dir);
      assert.equal(pod.tryLock(), true);
      pod.moveTo('run');
      assert.equal(probe.state(), 'running', 'the lock is on the directory, not on its name');
      assert.deepEqual(pods.inState('prepared'), []);
      assert.deepEqual(pods.inState('run'), [U1]);
      pod.unlock();
      assert.equal(probe.state(), 'exited');
    } finally {
      pod.close();
      probe.close();
    }
  });

  test('closing the fd drops its lock (the kernel does it for a dead holder)', () => {
    const pods = podsDir();
    placePod(pods, 'run', U1);
    const holder = pods.open(U1)!;
    assert.equal(holder.tryLock(), true);
    const probe = pods.open(U1)!;
    try {
      assert.equal(probe.state(), 'running');
      holder.close();
      assert.equal(probe.state(), 'exited');
    } finally {
      probe.close();
    }
  });

  test('moveTo: a pod moved by another process first is a Conflict; nothing else moves', () => {
    const pods = podsDir();
    placePod(pods, 'run', U1);
    const pod = pods.open(U1)!;
    try {
      fs.renameSync(pods.podDir('run', U1), pods.podDir('exited-garbage', U1)); // the other gc won
      rejects(() => pod.moveTo('exited-garbage'), ErrorCode.Conflict, /was moved by another process/);
      assert.equal(pod.refresh(), 'exited-garbage');
      assert.equal(pod.where, 'exited-garbage');
    } finally {
      pod.close();
    }
  });

  test('open: a pod in no state directory is undefined; createdAt is pod-created’s mtime', () => {
    const pods = podsDir();
    assert.equal(pods.open(U1), undefined);
    placePod(pods, 'prepared', U1);
    const pod = pods.open(U1)!;
    try {
      assert.equal(pod.createdAt(), undefined);
      fs.writeFileSync(path.join(pod.dir, 'pod-created'), '');
      fs.utimesSync(path.join(pod.dir, 'pod-created'), 1_000_000, 1_000_000);
      assert.equal(pod.createdAt(), 1_000_000_000);
    } finally {
      pod.close();
    }
  });
});

describe('pods: UUID lookup', () => {
  test('a unique prefix resolves, in any case and with spaces around; the full UUID too', () => {
    const pods = podsDir();
    placePod(pods, 'prepared', U1);
    placePod(pods, 'run', 'ffff0000-0000-4000-8000-000000000000');
    assert.equal(pods.resolve(' 1A2B '), U1);
    assert.equal(pods.resolve(U1), U1);
    assert.equal(pods.resolve('f'), 'ffff0000-0000-4000-8000-000000000000', 'a one-digit prefix reads every bucket');
  });

  test('ambiguous, unknown, empty and non-hex prefixes: one error each', () => {
    const pods = podsDir();
    placePod(pods, 'prepared', U1);
    placePod(pods, 'exited-garbage', U2);
    rejects(() => pods.resolve('1a2b'), ErrorCode.Ambiguous, /^ambiguous uuid, 2 matches$/);
    assert.equal(pods.resolve(U2), U2, 'a match in exited-garbage');
    rejects(() => pods.resolve('abcd'), ErrorCode.NotFound, /^no matches found for "abcd"$/);
    rejects(() => pods.resolve('  '), ErrorCode.BadInput, /^UUID cannot be empty$/);
    rejects(() => pods.resolve('../etc'), ErrorCode.BadInput, /^no matches found for "\.\.\/etc"$/);
  });

  test('pods in embryo or garbage are not found (rkt), nor a marker without a pod', () => {
    const pods = podsDir();
    placePod(pods, 'embryo', U1);
    placePod(pods, 'garbage', U2);
    fs.mkdirSync(path.join(pods.root, 'uuids', 'ab'));
    fs.writeFileSync(path.join(pods.root, 'uuids', 'ab', 'abababab-0000-4000-8000-000000000000'), '');
    for (const p of ['1a2b', U1, U2]) rejects(() => pods.resolve(p), ErrorCode.NotFound, /no matches found/);
    assert.equal(pods.allUuids().length, 3);
  });

  test('dropMarker forgets the pod', () => {
    const pods = podsDir();
    placePod(pods, 'prepared', U1);
    pods.dropMarker(U1);
    assert.deepEqual(pods.allUuids(), []);
    rejects(() => pods.resolve(U1), ErrorCode.NotFound, /no matches/);
  });
});
