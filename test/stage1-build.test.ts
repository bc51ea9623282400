// The stage1 image `make` builds (bin/stage1.aci): its manifest, its rootfs, and
// the SEA behind /init, /enter and /gc running from an extracted copy, through
// the loader and libraries the image ships.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './harness/paths.js';
import { STAGE1_ANNOTATIONS, STAGE1_ENTRYPOINTS, STAGE1_INTERFACE_VERSION } from '../stage1/contract/pod.js';
import type { AppcImageManifest } from '../stage1/contract/appc.js';

// build/test/stage1-build.test.js → the repository (not the harness's REPO_ROOT,
// which stops at build/, where tsc copies package.json).
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ACI = path.join(REPO_ROOT, 'bin', 'stage1.aci');

interface SelfTest {
  isSea: boolean;
  entry: string;
  rootfs: string;
  helper: string;
  koffiNode: string;
  execPath: string;
  argv: string[];
  args: string[];
  nodeEnv: string[];
  flock: boolean;
  lockFdOpen?: boolean;
  libs: string[];
}

function tar(args: string[]): string {
  const r = spawnSync('tar', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `tar ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** True if the ELF file has a PT_INTERP program header (is dynamically linked). */
function hasInterpreter(file: string): boolean {
  const buf = fs.readFileSync(file);
  assert.equal(buf.subarray(0, 4).toString('latin1'), '\x7fELF', `${file} is not ELF`);
  assert.equal(buf[4], 2, `${file} is not 64-bit ELF`);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return true;
  }
  return false;
}

/** The environment of this test process, plus extras (NODE_* left in on purpose). */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}

describe('stage1 image (bin/stage1.aci)', () => {
  let dir: string;
  let rootfs: string;

  before(() => {
    assert.ok(fs.existsSync(ACI), `${ACI} is missing: run make`);
    dir = makeTempDir('stage1-build');
    tar(['-xf', ACI, '-C', dir]);
    rootfs = fs.realpathSync(path.join(dir, 'rootfs'));
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function run(entry: string, args: string[], env: NodeJS.ProcessEnv = process.env, extraFd?: number): SpawnSyncReturns<string> {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (extraFd !== undefined) stdio.push(extraFd);
    return spawnSync(path.join(rootfs, entry), args, { encoding: 'utf8', env, stdio, cwd: dir, timeout: 60_000 });
  }

  function selfTest(entry: string, args: string[], extraEnv: Record<string, string> = {}, extraFd?: number): SelfTest {
    const r = run(entry, args, envWith({ TSPOD_STAGE1_SELFTEST: '1', ...extraEnv }), extraFd);
    assert.equal(r.status, 0, `${entry} self-test exited ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
    return JSON.parse(r.stdout) as SelfTest;
  }

  it('is an uncompressed ACI whose first entry is the manifest', () => {
    const head = fs.readFileSync(ACI).subarray(257, 262).toString('latin1');
    assert.equal(head, 'ustar', 'not a plain tar');
    const entries = tar(['-tf', ACI]).split('\n').filter(Boolean);
    assert.equal(entries[0], 'manifest');
    for (const f of ['rootfs/init', 'rootfs/enter', 'rootfs/gc', 'rootfs/tspod-stage1', 'rootfs/tspod-helper',
      'rootfs/lib/ld-linux-x86-64.so.2', 'rootfs/lib/koffi.node', 'rootfs/lib/libc.so.6', 'rootfs/lib/libstdc++.so.6']) {
      assert.ok(entries.includes(f), `${f} missing from the ACI`);
    }
    const owners = tar(['-tvf', ACI, '--numeric-owner']).split('\n').filter(Boolean);
    for (const line of owners) assert.match(line, /^\S+ 0\/0 /, `not owned by 0:0: ${line}`);
  });

  it('has a manifest naming the entrypoints and the interface version', () => {
    const m = JSON.parse(tar(['-xOf', ACI, 'manifest'])) as AppcImageManifest;
    assert.equal(m.acKind, 'ImageManifest');
    assert.equal(m.name, 'tspod/stage1');
    const labels = Object.fromEntries((m.labels ?? []).map((l) => [l.name, l.value]));
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(labels, { version: pkg.version, os: 'linux', arch: 'amd64' });
    const ann = Object.fromEntries((m.annotations ?? []).map((a) => [a.name, a.value]));
    assert.equal(ann[STAGE1_ANNOTATIONS.init], '/init');
    assert.equal(ann[STAGE1_ANNOTATIONS.enter], '/enter');
    assert.equal(ann[STAGE1_ANNOTATIONS.gc], '/gc');
    assert.equal(ann[STAGE1_ANNOTATIONS.interfaceVersion], String(STAGE1_INTERFACE_VERSION));
    // No annotation for an entrypoint the image does not ship (rkt's `stop` is none of tspod's).
    const names = (m.annotations ?? []).map((a) => a.name).sort();
    assert.deepEqual(names, [...STAGE1_ENTRYPOINTS.map((e) => STAGE1_ANNOTATIONS[e]), STAGE1_ANNOTATIONS.interfaceVersion].sort());
    for (const e of STAGE1_ENTRYPOINTS) {
      const st = fs.statSync(path.join(rootfs, ann[STAGE1_ANNOTATIONS[e]]!));
      assert.ok(st.isFile() && st.mode & 0o111, `${e}: ${ann[STAGE1_ANNOTATIONS[e]]} is not an executable file`);
    }
  });

  it('has static launchers and a SEA that needs only the shipped libraries', () => {
    for (const e of ['init', 'enter', 'gc']) {
      const st = fs.statSync(path.join(rootfs, e));
      assert.ok(st.mode & 0o111, `${e} is not executable`);
      assert.equal(hasInterpreter(path.join(rootfs, e)), false, `${e} is not static`);
    }
    assert.ok(fs.statSync(path.join(rootfs, 'lib', 'ld-linux-x86-64.so.2')).mode & 0o111);
  });

  for (const entry of ['init', 'enter', 'gc']) {
    it(`/${entry} runs the SEA as ${entry}, with the arguments it was given`, () => {
      const st = selfTest(entry, ['x', 'y', '', 'a b']);
      assert.equal(st.isSea, true);
      assert.equal(st.entry, entry);
      assert.deepEqual(st.args, ['x', 'y', '', 'a b']);
      assert.equal(st.rootfs, rootfs);
      assert.equal(st.helper, path.join(rootfs, 'tspod-helper'));
      assert.equal(st.koffiNode, path.join(rootfs, 'lib', 'koffi.node'));
      assert.equal(st.execPath, path.join(rootfs, 'lib', 'ld-linux-x86-64.so.2'));
    });
  }

  it('calls libc through koffi (native/libc.ts) inside the SEA', () => {
    const st = selfTest('gc', []);
    assert.equal(st.flock, true);
    assert.ok(st.libs.includes(path.join(rootfs, 'lib', 'koffi.node')), st.libs.join('\n'));
  });

  it('maps only the loader and libraries of its rootfs', () => {
    const st = selfTest('init', []);
    for (const lib of ['libstdc++.so.6', 'libc.so.6', 'libm.so.6', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2']) {
      assert.ok(st.libs.includes(path.join(rootfs, 'lib', lib)), `${lib} not mapped from the rootfs:\n${st.libs.join('\n')}`);
    }
    const foreign = st.libs.filter((l) => !l.startsWith(`${rootfs}/`));
    assert.deepEqual(foreign, [], 'libraries mapped from outside the rootfs');
  });

  it('is not affected by NODE_OPTIONS, other NODE_* variables or LD_PRELOAD', () => {
    const bad = { NODE_OPTIONS: '--require=/nonexistent', NODE_PATH: '/nonexistent', LD_PRELOAD: '/nonexistent/libx.so' };
    const st = selfTest('gc', ['u'], bad);
    assert.deepEqual(st.nodeEnv, []);
    const r = run('gc', ['--debug', '0b7e5f4c-1c2d-4e5f-8a9b-0c1d2e3f4a5b'], envWith(bad));
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /nonexistent/);
  });

  it('keeps an inherited fd open (the pod lock, TSPOD_LOCK_FD)', () => {
    const file = path.join(dir, 'lockfile');
    const fd = fs.openSync(file, 'w');
    try {
      const st = selfTest('init', [], { TSPOD_LOCK_FD: '3' }, fd);
      assert.equal(st.lockFdOpen, true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('dispatches to the real entrypoints', () => {
    const gc = run('gc', ['0b7e5f4c-1c2d-4e5f-8a9b-0c1d2e3f4a5b']);
    assert.equal(gc.status, 0, gc.stderr);
    for (const entry of ['init', 'enter', 'gc']) {
      const r = run(entry, []);
      assert.equal(r.status, 254, `${entry} without arguments: ${r.status} ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`\\b${entry}\\b`));
    }
  });

  it('refuses a name that is not an entrypoint', () => {
    fs.copyFileSync(path.join(rootfs, 'gc'), path.join(rootfs, 'bogus'));
    fs.chmodSync(path.join(rootfs, 'bogus'), 0o755);
    const r = run('bogus', []);
    assert.equal(r.status, 254);
    assert.match(r.stderr, /unknown entrypoint "bogus"/);
  });
});

describe('stage1 assembly (stage1/build/assemble.ts)', () => {
  const work = path.join(REPO_ROOT, 'build', 'stage1-image');
  let dir: string;

  before(() => {
    dir = makeTempDir('stage1-assemble');
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails without a built helper, and makes no image', () => {
    const out = path.join(dir, 'stage1.aci');
    const args = [
      path.join(work, 'assemble.mjs'),
      `--sea=${path.join(work, 'tspod-stage1')}`,
      `--launcher=${path.join(work, 'launcher')}`,
      `--helper=${path.join(dir, 'no-such-helper')}`,
      `--koffi=${path.join(REPO_ROOT, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node')}`,
      `--work=${path.join(dir, 'work')}`,
      `--out=${out}`,
      '--version=0.0.0',
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0, `assemble succeeded: ${r.stdout}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--helper=\S*no-such-helper: no such file/);
    assert.deepEqual(fs.readdirSync(dir), [], 'assemble left files behind');
  });
});
