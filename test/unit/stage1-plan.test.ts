// Pure logic of stage1's plan writing (stage1/plan.ts, stage1/pod-setup.ts), no root:
// the fast paths taken for speed give exactly what the general code gives.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { encodeField } from '../../stage1/plan.js';
import { below } from '../../stage1/pod-setup.js';

/** PLAN.md's encoding, byte by byte (the reference the fast path must match). */
function slowEncode(s: string): string {
  if (s === '') return '-E-';
  if (s === '-' || s === '-E-') return `%2D${s.slice(1)}`;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b > 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

describe('plan field encoding', () => {
  test('plain fields pass through; anything else is encoded as PLAN.md says', () => {
    const samples = ['', '-', '-E-', '--', 'a', '/proc/kcore', 'bind,nosuid,nodev,noexec,optional', '100%', 'a b', 'tab\there', 'new\nline', 'é', '\u0000x', '~!', '$&', '#x', '%2D', 'x-E-'];
    for (const s of samples) assert.equal(encodeField(s), slowEncode(s), JSON.stringify(s));
    // every single byte, and random strings over the whole range
    for (let c = 0; c < 0x300; c++) assert.equal(encodeField(String.fromCharCode(c)), slowEncode(String.fromCharCode(c)));
    for (let i = 0; i < 500; i++) {
      const s = Array.from({ length: 1 + (i % 40) }, (_v, j) => String.fromCharCode(((i * 7919 + j * 104729) % 160) + 1)).join('');
      assert.equal(encodeField(s), slowEncode(s), JSON.stringify(s));
    }
  });
});

describe('below (a path under an app root)', () => {
  test('is path.join for every relative path, clean or not', () => {
    const root = '/var/lib/tspod/pods/run/u/stage1/rootfs/opt/stage2/app/rootfs';
    for (const rel of ['proc', 'proc/sys', 'dev/null', 'etc/resolv.conf', 'a/./b', 'a//b', 'a/../../x', '..', '.', '', 'x/', '../etc', 'dev/..hidden', '.dotfile']) {
      assert.equal(below(root, rel), path.join(root, rel), rel);
    }
  });
});
