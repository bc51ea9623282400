// A remedy named by store/ (native/errors.ts) becomes the hint naming the flag
// in cmd/remedies.ts only; the printed line is as helpful as when store/ wrote it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError, type Remedy } from '../../native/errors.js';
import { errorLine, hintFor, REMEDY_HINTS } from '../../cmd/remedies.js';
import { secureDataDir } from '../../store/paths.js';
import { fetchImage } from '../../store/fetch.js';
import { withStore } from '../../store/store.js';
import type { InsecureOptions } from '../../store/insecure.js';
import { scratch } from './util.js';

const NO_INSECURE: InsecureOptions = { http: false, tls: false, image: false, capabilities: false, paths: false, seccomp: false, isolators: false };

function thrown(fn: () => unknown): TspodError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TspodError, String(e));
    return e;
  }
  assert.fail('expected a TspodError');
}

describe('remedies → hints (cmd/remedies.ts)', () => {
  test('each remedy has its words, naming the flag that does it', () => {
    const expected: Record<Remedy, string> = {
      'allow-pull': 'use --pull-policy=new',
      'allow-plain-http': 'use --insecure-options=http to allow it',
      'try-plain-http': 'if it serves plain http, use --insecure-options=http',
      'accept-any-tls': 'use --insecure-options=tls to accept it anyway',
      'allow-overwrite': 'try --overwrite',
      'choose-data-dir': 'choose another --dir',
      'show-own-manifest': 'its manifest is the one shown without --original',
    };
    assert.deepEqual(REMEDY_HINTS, expected);
  });

  test('the line: the message alone, with its hint, with its remedy, or with both (`hint, or remedy`)', () => {
    const line = (o?: { hint?: string; remedy?: Remedy }) => errorLine(new TspodError(ErrorCode.NotFound, 'image "x" is not in the store and the pull policy is never', o));
    assert.equal(line(), 'image "x" is not in the store and the pull policy is never');
    assert.equal(line({ hint: 'fetch it first' }), 'image "x" is not in the store and the pull policy is never: fetch it first');
    assert.equal(line({ remedy: 'allow-pull' }), 'image "x" is not in the store and the pull policy is never: use --pull-policy=new');
    assert.equal(line({ hint: 'fetch it first', remedy: 'allow-pull' }), 'image "x" is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new');
    assert.equal(hintFor(new TspodError(ErrorCode.System, 'm')), undefined);
  });

  test('the line for store errors with a remedy: a data directory that is a file, an image missing under the never pull policy', async () => {
    const dir = scratch();
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    const notDir = thrown(() => secureDataDir(file));
    assert.equal(notDir.remedy, 'choose-data-dir');
    assert.equal(errorLine(notDir), `data directory ${file} is not a directory: choose another --dir`);

    const missing = await withStore(path.join(dir, 'data'), (store) =>
      fetchImage(store, 'docker://example.com/app:1', { pullPolicy: 'never', insecure: NO_INSECURE }).then(
        () => assert.fail('fetched under the never pull policy'),
        (e: unknown) => e,
      ),
    );
    assert.ok(missing instanceof TspodError, String(missing));
    assert.equal(missing.code, ErrorCode.NotFound);
    assert.equal(errorLine(missing), 'image "example.com/app:1" is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new');
  });
});
