// Shared by the unit tests: a scratch directory per test and the fake system calls.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, beforeEach } from 'node:test';
import { setSys } from '../../native/sys.js';
import { FakeSys } from './fake-sys.js';

/** The repository (tests run from build/test/unit/). */
export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A new private directory under $TMPDIR (tspod-unit-*), removed when the test file ends. */
export function scratch(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tspod-unit-'));
  made.push(d);
  return d;
}

/** Installs a fresh FakeSys before each test of the file (and the real calls back after it). */
export function useFakeSys(): { readonly sys: FakeSys } {
  const holder = { sys: new FakeSys() };
  let restore: (() => void) | undefined;
  beforeEach(() => {
    holder.sys = new FakeSys();
    restore = setSys(holder.sys);
  });
  afterEach(() => restore?.());
  return holder;
}

/** The helper as `make` builds it. */
export const HELPER = path.join(REPO, 'bin/tspod-helper');

/** `tspod-helper plan-check` on a plan's text: it parses as `run` does and runs nothing. */
export function planCheck(text: string | Buffer): { code: number | null; out: string; err: string; file: string } {
  const file = path.join(scratch(), 'plan');
  fs.writeFileSync(file, text);
  const r = spawnSync(HELPER, ['plan-check', file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, file };
}
