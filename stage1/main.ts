// The stage1 single-executable application: one binary behind /init, /enter and
// /gc, dispatching on the name it was invoked as (see stage1/sea.ts). Bundled by
// esbuild to CommonJS (Node 20 SEAs run CommonJS); no top-level await.
import fs from 'node:fs';
import { main as initMain } from './init.js';
import { main as enterMain } from './enter.js';
import { main as gcMain } from './gc.js';
import { entryName, helperPath, isSea, koffiNodePath, prepareEnvironment, stage1Rootfs, userArgs } from './sea.js';
import { LOCK_EX, LOCK_NB, LOCK_UN, sys } from '../native/sys.js';
import { STAGE1_ENTRYPOINTS, type Stage1Entrypoint } from './contract/pod.js';

type Entry = (argv: string[]) => Promise<number>;

const ENTRIES: Record<Stage1Entrypoint, Entry> = { init: initMain, enter: enterMain, gc: gcMain };

/**
 * Build check, not an entrypoint: with TSPOD_STAGE1_SELFTEST=1 any entry prints
 * what the SEA sees (JSON) and exercises koffi (sys().flock, native/libc.ts).
 */
function selfTest(): number {
  const fd = fs.openSync('/proc/self/maps', 'r');
  let flocked: boolean;
  try {
    flocked = sys().flock(fd, LOCK_EX | LOCK_NB);
    sys().flock(fd, LOCK_UN);
  } finally {
    fs.closeSync(fd);
  }
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const libs = [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((p) => /\.so|\.node$/.test(p)))];
  const lockFd = Number(process.env.TSPOD_LOCK_FD);
  let lockFdOpen: boolean | undefined;
  if (Number.isInteger(lockFd)) {
    try {
      fs.fstatSync(lockFd);
      lockFdOpen = true;
    } catch {
      lockFdOpen = false;
    }
  }
  const report = {
    isSea: isSea(),
    entry: entryName(),
    rootfs: stage1Rootfs(),
    helper: helperPath(),
    koffiNode: koffiNodePath(),
    execPath: process.execPath,
    argv: process.argv,
    args: userArgs(),
    nodeEnv: Object.keys(process.env).filter((k) => k.startsWith('NODE_')),
    flock: flocked,
    lockFdOpen,
    libs,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

async function run(): Promise<number> {
  prepareEnvironment();
  if (process.env.TSPOD_STAGE1_SELFTEST === '1') return selfTest();
  const name = entryName();
  if (!(STAGE1_ENTRYPOINTS as readonly string[]).includes(name)) {
    process.stderr.write(`tspod stage1: unknown entrypoint "${name}" (expected ${STAGE1_ENTRYPOINTS.join(', ')})\n`);
    return 254;
  }
  return ENTRIES[name as Stage1Entrypoint](userArgs());
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const debug = process.argv.includes('--debug');
    const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err);
    process.stderr.write(`tspod stage1: ${text}\n`);
    process.exitCode = 254;
  },
);
