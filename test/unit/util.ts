// Shared by the unit tests: a scratch directory per test and the fake system calls.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, beforeEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setSys } from '../../native/sys.js';
import type { PodsDir, StateDir } from '../../stage0/pods.js';
import { POD_FILES, STAGE1_ANNOTATIONS, STAGE1_INTERFACE_VERSION } from '../../stage1/contract/pod.js';
import { FakeSys } from './fake-sys.js';

/** The repository (tests run from build/test/unit/). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

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
  afterEach(() => {
    restore?.();
    holder.sys.dispose();
  });
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

/** A pod directory made by hand in `state`, with its UUID marker (as PodsDir.create leaves it); its path. */
export function placePod(pods: PodsDir, state: StateDir, uuid: string): string {
  const dir = pods.podDir(state, uuid);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.mkdirSync(path.join(pods.root, 'uuids', uuid.slice(0, 2)), { recursive: true });
  fs.writeFileSync(path.join(pods.root, 'uuids', uuid.slice(0, 2), uuid), '');
  return dir;
}

/**
 * Gives a pod a stage1 (its `stage1/manifest` and `stage1/layers`): one layer,
 * `layer`, with an executable file per entrypoint in `entrypoints` (name → its
 * text), each annotated; `version` is the interface version it declares.
 */
export function giveStage1(podDir: string, layer: string, entrypoints: Record<string, string>, version = String(STAGE1_INTERFACE_VERSION)): void {
  fs.mkdirSync(layer, { recursive: true });
  const annotations: Array<{ name: string; value: string }> = [{ name: STAGE1_ANNOTATIONS.interfaceVersion, value: version }];
  if (!('init' in entrypoints)) annotations.push({ name: STAGE1_ANNOTATIONS.init, value: '/init' });
  for (const [name, text] of Object.entries(entrypoints)) {
    fs.writeFileSync(path.join(layer, name), text, { mode: 0o755 });
    annotations.push({ name: STAGE1_ANNOTATIONS[name as keyof typeof STAGE1_ANNOTATIONS], value: `/${name}` });
  }
  fs.mkdirSync(path.join(podDir, 'stage1'), { recursive: true });
  fs.writeFileSync(path.join(podDir, POD_FILES.stage1Manifest), JSON.stringify({ acKind: 'ImageManifest', acVersion: '0.8.11', name: 'test/stage1', annotations }));
  fs.writeFileSync(path.join(podDir, POD_FILES.stage1Layers), JSON.stringify([layer]));
}
