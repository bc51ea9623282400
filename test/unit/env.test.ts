// The apps' environment (stage0/env.ts): the merge order, lowest to highest —
// image, --inherit-env (fills only what is unset), --set-env-file, --set-env, the
// app's --environment — and the env file's syntax and its errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { mergeEnvironment, readEnvFile } from '../../stage0/env.js';
import { scratch } from './util.js';

const nv = (pairs: Array<[string, string]>) => pairs.map(([name, value]) => ({ name, value }));

describe('environment merge', () => {
  test('each source overrides the ones below it; the image’s order is kept, new names follow', () => {
    const env = mergeEnvironment({
      image: nv([['PATH', '/img'], ['IMG', 'i'], ['ALL', 'image']]),
      inherited: { PATH: '/host', HOSTONLY: 'h', ALL: 'host' },
      fromFiles: [['ALL', 'file'], ['FILE', 'f']],
      setEnv: [['ALL', 'set-env'], ['SET', 's']],
      appEnvironment: [['ALL', 'app']],
    });
    assert.deepEqual(env, nv([['PATH', '/img'], ['IMG', 'i'], ['ALL', 'app'], ['HOSTONLY', 'h'], ['FILE', 'f'], ['SET', 's']]));
  });

  test('--inherit-env fills only what the image leaves unset, and skips undefined values', () => {
    const env = mergeEnvironment({ image: nv([['HOME', '/root']]), inherited: { HOME: '/home/u', TERM: 'xterm', GONE: undefined }, fromFiles: [], setEnv: [], appEnvironment: [] });
    assert.deepEqual(env, nv([['HOME', '/root'], ['TERM', 'xterm']]));
  });

  test('without --inherit-env nothing of the caller’s environment gets in', () => {
    const env = mergeEnvironment({ image: [], fromFiles: [], setEnv: [['A', '1']], appEnvironment: [] });
    assert.deepEqual(env, nv([['A', '1']]));
  });

  test('--set-env beats the file; the app’s --environment beats both; an empty value is a value', () => {
    const env = mergeEnvironment({ image: nv([['X', 'image']]), fromFiles: [['X', 'file']], setEnv: [['X', 'set']], appEnvironment: [['X', '']] });
    assert.deepEqual(env, nv([['X', '']]));
  });
});

describe('--set-env-file', () => {
  function file(text: string): string {
    const f = path.join(scratch(), 'env');
    fs.writeFileSync(f, text);
    return f;
  }

  test('NAME=VALUE lines; blank lines and # or ; comments skipped; CRLF and = in values kept right', () => {
    const f = file('# comment\n\n  ; another\nA=1\r\nB=x=y\nC=\nD= spaced \n');
    assert.deepEqual(readEnvFile(f), [['A', '1'], ['B', 'x=y'], ['C', ''], ['D', ' spaced ']]);
  });

  test('errors name the file and the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['A=1\nnot a pair\n', /, line 2: expected NAME=VALUE$/],
      ['=x\n', /, line 1: expected NAME=VALUE$/],
      ['9A=x\n', /, line 1: expected NAME=VALUE$/],
      ['A=1\nB=2\nA=3\n', /, line 3: A is set twice$/],
    ];
    for (const [text, why] of cases) {
      const f = file(text);
      assert.throws(() => readEnvFile(f), (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadInput && e.message.startsWith(`--set-env-file ${f}`) && why.test(e.message), text);
    }
  });

  test('an unreadable file is one BadInput error with the errno', () => {
    const missing = path.join(scratch(), 'missing');
    assert.throws(() => readEnvFile(missing), (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadInput && e.message === `--set-env-file ${JSON.stringify(missing)} cannot be read: ENOENT`);
  });
});
