// What the fake does for the tests: "another process" (holdElsewhere) holds a
// lock the kernel itself enforces against the code under test, and lets go of
// it; a lock that would be waited for fails instead of hanging the test; the
// mount table reads like /proc/self/mountinfo.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { kernel, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../../native/sys.js';
import { FakeSys } from './fake-sys.js';
import { scratch } from './util.js';

function openDir(dir: string): number {
  return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
}

describe('FakeSys', () => {
  test('holdElsewhere is a lock the kernel enforces, on the directory wherever it moves; releaseElsewhere lets go', () => {
    const fake = new FakeSys();
    const dir = path.join(scratch(), 'pod');
    fs.mkdirSync(dir);
    const fd = openDir(dir);
    try {
      fake.holdElsewhere(dir, 'sh');
      assert.equal(kernel.flock(fd, LOCK_SH | LOCK_NB), true, 'shared with a shared holder');
      assert.equal(kernel.flock(fd, LOCK_UN), true);
      assert.equal(fake.flock(fd, LOCK_EX | LOCK_NB), false);
      fake.holdElsewhere(dir); // now exclusive
      fs.renameSync(dir, `${dir}.moved`);
      assert.equal(fake.flock(fd, LOCK_SH | LOCK_NB), false);
      fake.releaseElsewhere(dir);
      assert.equal(fake.flock(fd, LOCK_EX | LOCK_NB), true);
      assert.throws(() => fake.holdElsewhere(`${dir}.moved`), /is locked already/);
      assert.deepEqual(
        fake.callsOf('flock').map((c) => [c.op, c.granted]),
        [
          ['LOCK_EX|LOCK_NB', false],
          ['LOCK_SH|LOCK_NB', false],
          ['LOCK_EX|LOCK_NB', true],
        ],
      );
    } finally {
      fs.closeSync(fd);
      fake.dispose();
    }
  });

  test('a blocking flock on a lock held elsewhere throws instead of waiting forever', () => {
    const fake = new FakeSys();
    const dir = scratch();
    const fd = openDir(dir);
    try {
      fake.holdElsewhere(dir);
      assert.throws(() => fake.flock(fd, LOCK_EX), /would wait forever/);
      fake.dispose();
      assert.equal(fake.flock(fd, LOCK_EX), true);
    } finally {
      fs.closeSync(fd);
    }
  });

  test('flock on a closed fd is EBADF, as the kernel says', () => {
    const fd = openDir(scratch());
    fs.closeSync(fd);
    assert.throws(() => new FakeSys().flock(fd, LOCK_EX | LOCK_NB), { code: 'EBADF' });
  });

  test('its mount table has mountinfo’s shape: the mount point is field 5, escaped as the kernel does', () => {
    const fake = new FakeSys();
    fake.mounts = ['/a b/c\\d'];
    const line = fake.mountInfo().split('\n')[1].split(' ');
    assert.match(kernel.mountInfo().split('\n')[0].split(' ')[4], /^\//, 'field 5 of the real one is a mount point too');
    assert.equal(line[4], '/a\\040b/c\\134d');
    assert.equal(line[line.indexOf('-') + 1], 'tmpfs', 'the file system type follows the separator');
  });
});
