// The stage1 executable's environment. stage1 runs as a Node single-executable
// application (SEA) at <rootfs>/tspod-stage1, always started by the static
// launcher <rootfs>/{init,enter,gc} (native/launcher/launcher.c) through the
// loader and libraries the image ships:
//
//   <rootfs>/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path <rootfs>/lib
//       --argv0 <entry> <rootfs>/tspod-stage1 ARGS...
//
// Inside, process.execPath (and /proc/self/exe) is the loader, process.argv is
// [loader, entry, ...ARGS], and the launcher has set TSPOD_STAGE1_ROOTFS,
// TSPOD_STAGE1_ENTRY and TSPOD_KOFFI_NODE and dropped every NODE_* variable.
// A SEA's require sees only built-in modules: koffi's native module is loaded by
// native/libc.ts with process.dlopen from TSPOD_KOFFI_NODE.
import fs from 'node:fs';
import path from 'node:path';
import { isSea as nodeIsSea } from 'node:sea';

/** Files of the stage1 rootfs, relative to it. */
export const STAGE1_FILES = {
  sea: 'tspod-stage1',
  helper: 'tspod-helper',
  libDir: 'lib',
  loader: 'lib/ld-linux-x86-64.so.2',
  koffiNode: 'lib/koffi.node',
} as const;

/** True inside the single-executable application. */
export function isSea(): boolean {
  return nodeIsSea();
}

/**
 * The entrypoint this process was invoked as (init, enter, gc, or whatever
 * else the launcher was named): TSPOD_STAGE1_ENTRY, else the name the SEA was
 * started under.
 */
export function entryName(): string {
  const fromEnv = process.env.TSPOD_STAGE1_ENTRY;
  if (fromEnv) return fromEnv;
  const argv0 = isSea() ? process.argv[1] : process.argv0;
  return path.basename(argv0 ?? process.execPath);
}

/**
 * The stage1 rootfs on the host (absolute): TSPOD_STAGE1_ROOTFS, else derived
 * from the executable (the loader in <rootfs>/lib, or the SEA itself).
 */
export function stage1Rootfs(): string {
  const fromEnv = process.env.TSPOD_STAGE1_ROOTFS;
  if (fromEnv) return fromEnv;
  const exe = process.execPath;
  const dir = path.dirname(exe);
  return path.basename(exe).startsWith('ld-linux') ? path.dirname(dir) : dir;
}

/** <rootfs>/tspod-helper: the static C helper stage1 execs. */
export function helperPath(): string {
  return path.join(stage1Rootfs(), STAGE1_FILES.helper);
}

/** <rootfs>/tspod-stage1: this executable. */
export function seaPath(): string {
  return path.join(stage1Rootfs(), STAGE1_FILES.sea);
}

/** <rootfs>/lib/koffi.node, or TSPOD_KOFFI_NODE when set. */
export function koffiNodePath(): string {
  return process.env.TSPOD_KOFFI_NODE || path.join(stage1Rootfs(), STAGE1_FILES.koffiNode);
}

/** The arguments after the entry name (what stage0 passed). */
export function userArgs(): string[] {
  // SEA: [execPath, argv0, ...args]. Outside a SEA (node main.js ...): [node, script, ...args].
  return process.argv.slice(2);
}

/**
 * Makes process.env safe to hand on and koffi loadable: drops every NODE_*
 * variable (the launcher already did; this covers a SEA started directly) and
 * points TSPOD_KOFFI_NODE at the rootfs's koffi.node when it is not set.
 */
export function prepareEnvironment(): void {
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('NODE_')) delete process.env[name];
  }
  if (!process.env.TSPOD_KOFFI_NODE) {
    const koffi = path.join(stage1Rootfs(), STAGE1_FILES.koffiNode);
    if (fs.existsSync(koffi)) process.env.TSPOD_KOFFI_NODE = koffi;
  }
}
