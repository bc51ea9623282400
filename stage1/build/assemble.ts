// Assembles the stage1 image: its rootfs, its appc ImageManifest, and the
// uncompressed ACI (`manifest` + `rootfs/`). Run by the Makefile (bundled by
// esbuild, then run by node):
//
//   node assemble.mjs --sea=FILE --launcher=FILE --helper=FILE --koffi=FILE
//                     --version=X.Y.Z --work=DIR --out=FILE.aci
//
// rootfs layout:
//   /init /enter /gc        the static launcher (copies)
//   /tspod-stage1           the Node SEA
//   /tspod-helper           the static C helper
//   /lib/ld-linux-x86-64.so.2, /lib/lib*.so.*   the loader and the libraries the SEA
//                           and koffi.node need, copied from this machine per ldd
//   /lib/koffi.node         koffi's native module
//   /dev /proc /sys /tmp /opt/stage2   empty mount points
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AC_VERSION, type AppcImageManifest } from '../contract/appc.js';
import { POD_ROOT_PATHS, STAGE1_ANNOTATIONS, STAGE1_ENTRYPOINTS, STAGE1_INTERFACE_VERSION } from '../contract/pod.js';

/** The default stage1's image name (an AC identifier). */
const STAGE1_IMAGE_NAME = 'tspod/stage1';

const LOADER = 'ld-linux-x86-64.so.2';

interface Options {
  sea: string;
  launcher: string;
  helper: string;
  koffi: string;
  version: string;
  work: string;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([a-z]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`bad argument: ${a}`);
    o[m[1]!] = m[2]!;
  }
  for (const k of ['sea', 'launcher', 'helper', 'koffi', 'version', 'work', 'out']) {
    if (!o[k]) throw new Error(`missing --${k}=`);
  }
  return o as unknown as Options;
}

function install(src: string, dst: string, mode: number): void {
  fs.copyFileSync(src, dst);
  fs.chmodSync(dst, mode);
}

/** soname → file on this machine, plus the loader, for every ELF file given (per ldd). */
function sharedLibraries(files: string[]): { loader: string; libs: Map<string, string> } {
  const libs = new Map<string, string>();
  let loader: string | undefined;
  for (const file of files) {
    const out = execFileSync('ldd', [file], { encoding: 'utf8' });
    for (const raw of out.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('linux-vdso') || line.startsWith('statically linked')) continue;
      if (line.includes('not found')) throw new Error(`${file}: ${line}`);
      const arrow = /^(\S+) => (\S+) \(0x[0-9a-f]+\)$/.exec(line);
      if (arrow) {
        libs.set(arrow[1]!, fs.realpathSync(arrow[2]!));
        continue;
      }
      const direct = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
      if (direct && path.basename(direct[1]!) === LOADER) {
        loader = fs.realpathSync(direct[1]!);
        continue;
      }
      throw new Error(`${file}: unexpected ldd line: ${line}`);
    }
  }
  if (!loader) throw new Error(`no ${LOADER} in ldd output of ${files.join(', ')}`);
  libs.delete(LOADER);
  return { loader, libs };
}

function stage1Manifest(version: string): AppcImageManifest {
  return {
    acKind: 'ImageManifest',
    acVersion: AC_VERSION,
    name: STAGE1_IMAGE_NAME,
    labels: [
      { name: 'version', value: version },
      { name: 'os', value: 'linux' },
      { name: 'arch', value: 'amd64' },
    ],
    annotations: [
      // One per launcher copy that assemble() installs, and nothing else.
      ...STAGE1_ENTRYPOINTS.map((e) => ({ name: STAGE1_ANNOTATIONS[e], value: `/${e}` })),
      { name: STAGE1_ANNOTATIONS.interfaceVersion, value: String(STAGE1_INTERFACE_VERSION) },
    ],
  };
}

/**
 * Every input must be a built, regular file: a stage1 without its helper (or its
 * SEA, launcher or koffi) could not run a pod, so none is made.
 */
function checkInputs(o: Options): void {
  for (const k of ['sea', 'launcher', 'helper', 'koffi'] as const) {
    let st: fs.Stats;
    try {
      st = fs.statSync(o[k]);
    } catch {
      throw new Error(`--${k}=${o[k]}: no such file; build it first (make)`);
    }
    if (!st.isFile()) throw new Error(`--${k}=${o[k]}: not a regular file`);
    if (k !== 'koffi' && !(st.mode & 0o111)) throw new Error(`--${k}=${o[k]}: not executable`);
  }
}

function assemble(o: Options): void {
  checkInputs(o);
  const aciDir = path.join(o.work, 'aci');
  const rootfs = path.join(aciDir, 'rootfs');
  fs.rmSync(aciDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(rootfs, 'lib'), { recursive: true, mode: 0o755 });
  for (const d of ['dev', 'proc', 'sys', 'tmp', POD_ROOT_PATHS.stage2]) fs.mkdirSync(path.join(rootfs, d), { recursive: true });

  install(o.sea, path.join(rootfs, 'tspod-stage1'), 0o755);
  for (const entry of STAGE1_ENTRYPOINTS) install(o.launcher, path.join(rootfs, entry), 0o755);

  install(o.helper, path.join(rootfs, 'tspod-helper'), 0o755);

  const { loader, libs } = sharedLibraries([o.sea, o.koffi]);
  install(loader, path.join(rootfs, 'lib', LOADER), 0o755);
  for (const [soname, file] of libs) install(file, path.join(rootfs, 'lib', soname), 0o755);
  install(o.koffi, path.join(rootfs, 'lib', 'koffi.node'), 0o644);
  for (const d of ['', 'lib', 'dev', 'proc', 'sys', path.dirname(POD_ROOT_PATHS.stage2), POD_ROOT_PATHS.stage2]) fs.chmodSync(path.join(rootfs, d), 0o755);
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.chmodSync(aciDir, 0o755);

  const manifest = path.join(aciDir, 'manifest');
  fs.writeFileSync(manifest, `${JSON.stringify(stage1Manifest(o.version), null, 2)}\n`);
  fs.chmodSync(manifest, 0o644);

  // Uncompressed ACI; manifest first, entries sorted, owned by 0:0.
  const tmp = `${o.out}.tmp`;
  const tarArgs = [
    '--create', `--file=${tmp}`, '--format=pax', '--sort=name', '--numeric-owner', '--owner=0', '--group=0',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', aciDir, 'manifest', 'rootfs',
  ];
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch && /^\d+$/.test(epoch)) tarArgs.splice(1, 0, `--mtime=@${epoch}`, '--clamp-mtime');
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  execFileSync('tar', tarArgs, { stdio: 'inherit' });
  fs.renameSync(tmp, o.out);
}

try {
  assemble(parseArgs(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`stage1 assemble: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
