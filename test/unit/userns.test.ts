// --private-users range allocation (stage0/userns.ts): the lowest range no pod of
// this data directory records and no live claim of another data directory holds;
// a range comes back when its pod directory goes; a stale claim is dropped. The
// host-wide claims directory is a scratch one here (/run/tspod/userns otherwise).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PodsDir } from '../../stage0/pods.js';
import { allocateUserNamespace, readUserNamespace, USERNS_BASE, USERNS_SIZE } from '../../stage0/userns.js';
import { placePod, scratch, useFakeSys } from './util.js';

const fake = useFakeSys();

function dataDir(): PodsDir {
  const pods = new PodsDir(path.join(scratch(), 'pods'));
  pods.ensureLayout();
  return pods;
}

const uuid = (n: number) => `0000000${n}-0000-4000-8000-000000000000`;
const slot = (i: number) => USERNS_BASE + i * USERNS_SIZE;

describe('--private-users ranges', () => {
  test('each pod gets the lowest free range, recorded in its userns file and claimed host-wide', () => {
    const claims = path.join(scratch(), 'claims');
    const pods = dataDir();
    const bases = [1, 2, 3].map((n) => {
      const dir = placePod(pods, 'prepare', uuid(n));
      return allocateUserNamespace(pods.root, dir, claims).uidMap[0][1];
    });
    assert.deepEqual(bases, [slot(0), slot(1), slot(2)]);
    assert.deepEqual(readUserNamespace(pods.podDir('prepare', uuid(2))), { uidMap: [[0, slot(1), USERNS_SIZE]], gidMap: [[0, slot(1), USERNS_SIZE]] });
    assert.equal(fs.readFileSync(path.join(claims, slot(1).toString(16)), 'utf8'), `${pods.root}\n${uuid(2)}`);
    // Both allocation locks, host-wide first, each waited for (exclusive).
    assert.deepEqual(fake.sys.callsOf('flock').slice(0, 2).map((c) => c.op), ['LOCK_EX', 'LOCK_EX']);
    // The middle pod is deleted: its range is the lowest free one again, in any state.
    fs.rmSync(pods.podDir('prepare', uuid(2)), { recursive: true });
    fs.renameSync(pods.podDir('prepare', uuid(3)), pods.podDir('exited-garbage', uuid(3)));
    const dir = placePod(pods, 'prepare', uuid(4));
    assert.equal(allocateUserNamespace(pods.root, dir, claims).uidMap[0][1], slot(1));
  });

  test('another data directory’s live claim is respected; a claim whose pod is gone is dropped', () => {
    const claims = path.join(scratch(), 'claims');
    const other = dataDir();
    const mine = dataDir();
    allocateUserNamespace(other.root, placePod(other, 'run', uuid(1)), claims); // slot 0, live
    allocateUserNamespace(other.root, placePod(other, 'run', uuid(2)), claims); // slot 1, to go
    fs.rmSync(other.podDir('run', uuid(2)), { recursive: true });
    const got = allocateUserNamespace(mine.root, placePod(mine, 'prepare', uuid(3)), claims).uidMap[0][1];
    assert.equal(got, slot(1), 'slot 0 is the other directory’s, slot 1 was freed');
    assert.equal(fs.readFileSync(path.join(claims, slot(1).toString(16)), 'utf8'), `${mine.root}\n${uuid(3)}`, 'the stale claim was replaced');
    assert.ok(fs.existsSync(path.join(claims, slot(0).toString(16))));
  });
});
