import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { classifyImageArg, type ImageArg } from '../store/sources/classify.js';
import { TspodError, ErrorCode } from '../native/errors.js';

function rejects(arg: string, code: string, re: RegExp): void {
  assert.throws(
    () => classifyImageArg(arg),
    (e: unknown) => e instanceof TspodError && e.code === code && re.test(e.line),
    `classifyImageArg(${JSON.stringify(arg)}) should fail with ${code} ${re}`,
  );
}

test('transports with schemes and prefixes', () => {
  const cases: Array<[string, ImageArg]> = [
    ['docker://busybox', { kind: 'docker', reference: 'busybox' }],
    ['docker://127.0.0.1:5000/a/b:1.0', { kind: 'docker', reference: '127.0.0.1:5000/a/b:1.0' }],
    ['docker:busybox:latest', { kind: 'docker', reference: 'busybox:latest' }],
    ['docker://quay.io/x/y@sha256:' + 'a'.repeat(64), { kind: 'docker', reference: 'quay.io/x/y@sha256:' + 'a'.repeat(64) }],
    ['oci:/srv/layout', { kind: 'oci', path: '/srv/layout' }],
    ['oci:/srv/layout:v1', { kind: 'oci', path: '/srv/layout', tag: 'v1' }],
    ['oci:rel/dir:@2', { kind: 'oci', path: 'rel/dir', tag: '@2' }],
    ['oci-archive:/x/img.tar', { kind: 'oci-archive', path: '/x/img.tar' }],
    ['oci-archive:img.tar:latest', { kind: 'oci-archive', path: 'img.tar', tag: 'latest' }],
    ['docker-archive:/x/saved.tar', { kind: 'docker-archive', path: '/x/saved.tar' }],
    ['docker-archive:/x/saved.tar:busybox:1.36', { kind: 'docker-archive', path: '/x/saved.tar', name: 'busybox:1.36' }],
    ['docker-archive:saved.tar:@1', { kind: 'docker-archive', path: 'saved.tar', name: '@1' }],
    ['https://example.com/img.aci', { kind: 'aci-url', url: 'https://example.com/img.aci' }],
    ['http://127.0.0.1:8080/x.aci', { kind: 'aci-url', url: 'http://127.0.0.1:8080/x.aci' }],
    ['HTTPS://example.com/y', { kind: 'aci-url', url: 'HTTPS://example.com/y' }],
    ['file:///tmp/a%20b.aci', { kind: 'aci-file', path: '/tmp/a b.aci' }],
  ];
  for (const [arg, want] of cases) assert.deepEqual(classifyImageArg(arg), want, arg);
});

test('image IDs', () => {
  assert.deepEqual(classifyImageArg('sha512-0123abcd'), { kind: 'id', id: 'sha512-0123abcd' });
  assert.deepEqual(classifyImageArg('sha256-ab'), { kind: 'id', id: 'sha256-ab' });
  assert.deepEqual(classifyImageArg('SHA512-AB'), { kind: 'id', id: 'SHA512-AB' });
});

test("rkt's rules for arguments without a scheme", () => {
  const dir = fs.mkdtempSync(path.join(process.env.TSPOD_TEST_ROOT ?? os.tmpdir(), 'tspod-test-classify-'));
  const cwd = process.cwd();
  try {
    fs.writeFileSync(path.join(dir, 'plainfile'), 'x');
    fs.writeFileSync(path.join(dir, 'with:colon'), 'x');
    fs.mkdirSync(path.join(dir, 'adir'));
    process.chdir(dir);
    const cases: Array<[string, ImageArg]> = [
      ['/abs/path/img', { kind: 'aci-file', path: '/abs/path/img' }],
      ['/abs/with:colon', { kind: 'aci-file', path: '/abs/with:colon' }],
      // an existing regular file wins over the name rules
      ['plainfile', { kind: 'aci-file', path: 'plainfile' }],
      ['with:colon', { kind: 'aci-file', path: 'with:colon' }],
      // a directory is not a file: it falls through to the name rules
      ['adir', { kind: 'name', name: 'adir' }],
      // ':' makes a name before './' or '.aci' are looked at
      ['busybox:latest', { kind: 'name', name: 'busybox:latest' }],
      ['example.com/app:1.0.aci', { kind: 'name', name: 'example.com/app:1.0.aci' }],
      ['localhost:5000/x', { kind: 'name', name: 'localhost:5000/x' }],
      ['./img', { kind: 'aci-file', path: './img' }],
      ['../up/img', { kind: 'aci-file', path: '../up/img' }],
      ['missing.aci', { kind: 'aci-file', path: 'missing.aci' }],
      ['sub/dir/x.aci', { kind: 'aci-file', path: 'sub/dir/x.aci' }],
      ['busybox', { kind: 'name', name: 'busybox' }],
      ['example.com/app', { kind: 'name', name: 'example.com/app' }],
      ['example.com/app,version=1.2.0', { kind: 'name', name: 'example.com/app:1.2.0' }],
    ];
    for (const [arg, want] of cases) assert.deepEqual(classifyImageArg(arg), want, arg);
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad arguments get one clear line', () => {
  rejects('', ErrorCode.Usage, /empty image argument/);
  rejects('   ', ErrorCode.Usage, /empty image argument/);
  rejects('docker://', ErrorCode.BadInput, /names no image.*docker:\/\//);
  rejects('oci:', ErrorCode.BadInput, /names no directory.*oci:DIR\[:TAG\]/);
  rejects('oci:/dir:', ErrorCode.BadInput, /empty tag/);
  rejects('oci-archive::tag', ErrorCode.BadInput, /names no file/);
  rejects('docker-archive:/x.tar:', ErrorCode.BadInput, /empty image name/);
  rejects('ftp://example.com/x.aci', ErrorCode.BadInput, /unsupported image source "ftp:\/\/".*use one of/);
  rejects('file://remotehost/x.aci', ErrorCode.BadInput, /invalid file URL.*file:\/\/\/absolute/);
  rejects('example.com/app,os=linux', ErrorCode.BadInput, /only the version label/);
});
