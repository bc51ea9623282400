// `prepare`: turns a PodSpec into a prepared pod. Everything the user can get
// wrong is checked before the pod directory exists, so bad input leaves nothing
// behind; the pod is then written under pods/prepare (locked) and moved to
// pods/prepared. Preparing writes only small files and references into the
// store: its cost does not depend on the size of the images (the overlays are
// mounted by stage1 at run time).
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import { AC_VERSION, annotationValue, type AppcApp, type AppcImageManifest, type NameValue } from '../stage1/contract/appc.js';
import { DEFAULT_PATH, POD_FILES, type PodApp, type PodManifest, type PodMount, type PodVolume, type UserNamespace } from '../stage1/contract/pod.js';
import { fetchImage } from '../store/fetch.js';
import { layerDirs } from '../store/image-ops.js';
import type { StoredImage } from '../store/images.js';
import type { InsecureOptions } from '../store/insecure.js';
import { ImageFs, imagePathProblem } from '../native/image-fs.js';
import { AC_NAME, checkAppPaths } from '../store/manifest/appc.js';
import { checkAciPlatform } from '../store/sources/aci.js';
import { renderLayers, visibleLayers } from '../store/layers/render.js';
import type { Store } from '../store/store.js';
import { mergeEnvironment, readEnvFile } from './env.js';
import type { PodStoreRefs } from './image-gc.js';
import { checkIsolators, overrideIsolators } from './isolators.js';
import { appDevices, DEVICES_ANNOTATION, uncheckedDeviceProblem } from '../stage1/contract/devices.js';
import { describeLayout, detectCgroups, deviceCgroupKind } from '../stage1/contract/cgroups.js';
import { SYSCTL, sysctlNamespaceProblem, sysctlsFromIsolators } from '../stage1/contract/sysctl.js';
import { dnsVolumeProblem, type PodDns } from '../stage1/contract/dns.js';
import { PodsDir, type Pod } from './pods.js';
import { checkPodPorts, checkPortsFree } from './ports.js';
import { checkExposedPorts } from '../stage1/contract/ports.js';
import { checkIpc, checkNet, type AppSpec, type PodSpec, type RuntimeFlags } from './spec.js';
import { resolveStage1 } from './stage1.js';
import { allocateUserNamespace, checkUserNamespaces, shiftTree } from './userns.js';



interface ResolvedApp {
  podApp: PodApp;
  image: StoredImage;
  layers: string[];
}

export interface PreparedPod {
  pod: Pod;
  manifest: PodManifest;
}

/**
 * Prepares a pod and leaves it locked in pods/prepare (for `run`) or moves it to
 * pods/prepared and unlocks it (for `prepare`).
 */
export async function preparePod(
  store: Store,
  spec: PodSpec,
  opts: { insecure: InsecureOptions; keepLockedForRun: boolean },
): Promise<PreparedPod> {
  const apps = spec.podManifestFile ? await appsFromManifestFile(store, spec.podManifestFile) : await appsFromSpec(store, spec, opts.insecure);
  const manifest: PodManifest = spec.podManifestFile
    ? readPodManifestFile(spec.podManifestFile)
    : { acKind: 'PodManifest', acVersion: AC_VERSION, apps: [], volumes: [], annotations: [] };
  if (!spec.podManifestFile) manifest.volumes = [...spec.volumes];
  if (!spec.podManifestFile && spec.ports.length) manifest.ports = spec.ports;
  if (!spec.podManifestFile && spec.sysctls.length) {
    manifest.isolators = [{ name: SYSCTL, value: Object.fromEntries(spec.sysctls) }];
  }
  manifest.apps = apps.map((a) => a.podApp);
  checkPodPorts(manifest, spec.runtime.net);
  bindMountPoints(manifest, apps);
  for (const a of apps) checkIsolators(`app ${a.podApp.name}`, a.podApp.app?.isolators, opts.insecure.isolators);
  checkIsolators('the pod', manifest.isolators, opts.insecure.isolators, 'pod');
  validatePod(manifest, apps, spec.runtime);
  // `run` starts the pod next: its host ports must be free before anything is made.
  if (opts.keepLockedForRun) checkPortsFree(manifest, spec.runtime.net);
  checkDnsAgainstVolumes(manifest, spec.dns);
  if (spec.privateUsers) checkUserNamespaces();
  const stage1Id = await resolveStage1(store, spec.stage1, opts.insecure);
  const stage1 = store.images.get(stage1Id);

  const pods = new PodsDir(store.paths.podsDir);
  const pod = pods.create();
  try {
    const userns = spec.privateUsers ? allocateUserNamespace(pods.root, pod.dir) : undefined;
    writePodFiles(pod.dir, manifest, apps, stage1, layerDirs(store, stage1), spec.runtime, spec.dns);
    await prefillImplicitVolumes(pod.dir, manifest, apps, userns);
    const overlay = spec.noOverlay ? false : overlaySupport(store.paths.dir);
    if (typeof overlay === 'string') log().warn(`disabling overlay support: "${overlay}"`);
    if (overlay !== true) {
      // Without overlay each app gets a full copy of its image (slower, more disk).
      for (const a of apps) {
        const dest = path.join(pod.dir, POD_FILES.appCopiedRootfs(a.podApp.name));
        fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
        await renderLayers(a.layers, dest);
        // No idmapped overlay lowers here: the copy is shifted into the pod's range (rkt's way).
        if (userns) shiftTree(dest, userns);
      }
    }
    for (const a of apps) store.images.touch(a.image.record.id);
    if (!opts.keepLockedForRun) {
      pod.moveTo('prepared');
      pod.unlock();
    }
  } catch (e) {
    // Left in pods/prepare, unlocked: gc removes it as an aborted prepare.
    pod.unlock();
    pod.close();
    throw e;
  }
  if (spec.uuidFileSave) fs.writeFileSync(spec.uuidFileSave, `${pod.uuid}\n`);
  return { pod, manifest };
}

// ---- apps from the command line ----

async function appsFromSpec(store: Store, spec: PodSpec, insecure: InsecureOptions): Promise<ResolvedApp[]> {
  const fromFiles = spec.setEnvFiles.flatMap(readEnvFile);
  const names = new Set<string>();
  const out: ResolvedApp[] = [];
  for (const a of spec.apps) {
    const { id } = await fetchImage(store, a.image, { pullPolicy: spec.pullPolicy, insecure });
    const image = store.images.get(id);
    // rkt checks an ACI's os/arch labels when it is rendered or run, not at fetch.
    if (image.record.kind === 'aci') checkAciPlatform(image.manifest);
    const name = a.name ?? defaultAppName(image, a.image);
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) {
      throw new TspodError(ErrorCode.BadInput, `invalid app name ${JSON.stringify(name)}`, { hint: 'use lower-case letters, digits and dashes' });
    }
    if (names.has(name)) throw new TspodError(ErrorCode.BadInput, `multiple apps with name ${name}`, { hint: 'give each app its own --name' });
    names.add(name);
    // Images fetched before tspod checked their paths (and ACIs) are checked here too.
    checkAppPaths(image.manifest.app, `image ${JSON.stringify(image.manifest.name)}`);
    const layers = layerDirs(store, image);
    const app = buildApp(image.manifest, a, {
      inherited: spec.inheritEnv ? process.env : undefined,
      fromFiles,
      setEnv: spec.setEnv,
    });
    validateAppAgainstImage(name, app, new ImageFs(layers), image);
    const mounts = mergeMounts(spec.globalMounts, a.mounts);
    out.push({
      podApp: {
        name,
        image: { id, name: image.manifest.name, labels: image.manifest.labels },
        app,
        readOnlyRootFS: a.readonlyRootfs,
        mounts,
        annotations: [
          ...a.annotations.map(([k, v]) => ({ name: k, value: v })),
          ...(a.devices?.length ? [{ name: DEVICES_ANNOTATION, value: JSON.stringify(a.devices) }] : []),
        ],
      },
      image,
      layers,
    });
  }
  return out;
}

/** rkt's default app name: the last path element of the image name, sanitised. */
export function defaultAppName(image: StoredImage, typed: string): string {
  const full = image.names[0] ?? image.manifest.name ?? typed;
  const noTag = full.replace(/[@:][^/]*$/, '');
  const last = noTag.slice(noTag.lastIndexOf('/') + 1);
  const clean = last
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .replace(/-{2,}/g, '-');
  return clean || 'app';
}

function buildApp(
  m: AppcImageManifest,
  a: AppSpec,
  env: { inherited?: NodeJS.ProcessEnv; fromFiles: Array<[string, string]>; setEnv: Array<[string, string]> },
): AppcApp {
  const base: AppcApp = structuredClone(m.app ?? { user: '0', group: '0' });
  const imageExec = base.exec ?? [];
  if (a.exec !== undefined) base.exec = [a.exec, ...a.args];
  else if (a.args.length) base.exec = [imageExec[0], ...a.args].filter((x): x is string => x !== undefined);
  if (!base.exec?.length) {
    throw new TspodError(ErrorCode.BadInput, `image ${JSON.stringify(m.name)} has no command to run`, { hint: 'give one with --exec' });
  }
  if (a.user !== undefined) base.user = a.user;
  if (a.group !== undefined) base.group = a.group;
  base.user ||= '0';
  base.group ||= '0';
  if (a.supplementaryGids) base.supplementaryGIDs = a.supplementaryGids;
  if (a.isolators) base.isolators = overrideIsolators(base.isolators, a.isolators);
  if (a.workingDir !== undefined) {
    const why = imagePathProblem(a.workingDir);
    if (why) throw new TspodError(ErrorCode.BadInput, `--working-dir ${JSON.stringify(a.workingDir)} ${why}`);
    base.workingDirectory = a.workingDir;
  }
  base.environment = mergeEnvironment({
    image: base.environment ?? [],
    inherited: env.inherited,
    fromFiles: env.fromFiles,
    setEnv: env.setEnv,
    appEnvironment: a.environment,
  });
  return base;
}

function envValue(env: NameValue[] | undefined, name: string): string | undefined {
  return env?.find((e) => e.name === name)?.value;
}

function validateAppAgainstImage(name: string, app: AppcApp, layers: ImageFs, image: StoredImage): void {
  const exec0 = app.exec![0];
  const found = layers.findExecutable(exec0, envValue(app.environment, 'PATH') ?? DEFAULT_PATH);
  if (!found) {
    throw new TspodError(ErrorCode.BadInput, `app ${name}: executable ${JSON.stringify(exec0)} not found in image ${JSON.stringify(image.manifest.name)}`, {
      hint: 'check the image or give another with --exec',
    });
  }
  checkCredential(name, 'user', app.user, layers, '/etc/passwd');
  // Docker's `USER name` without a group means the user's primary group; converted
  // images carry it as a group of the same name, which /etc/group may not have.
  if (app.group === app.user && !/^\d+$/.test(app.user) && !dbHas(layers, '/etc/group', app.group)) {
    const primary = (layers.readFile('/etc/passwd')?.toString('utf8') ?? '').split('\n').find((l) => l.split(':')[0] === app.user)?.split(':')[3];
    if (primary && /^\d+$/.test(primary)) app.group = primary;
  }
  checkCredential(name, 'group', app.group, layers, '/etc/group');
}

function dbHas(layers: ImageFs, db: string, entry: string): boolean {
  return (layers.readFile(db)?.toString('utf8') ?? '').split('\n').some((line) => line.split(':')[0] === entry);
}

function checkCredential(app: string, kind: 'user' | 'group', value: string, layers: ImageFs, db: string): void {
  // root is 0 even in an image without /etc/passwd or /etc/group (as rkt).
  if (/^\d+$/.test(value) || value === 'root') return;
  if (value.startsWith('/')) {
    if (!layers.resolve(value)) {
      throw new TspodError(ErrorCode.BadInput, `app ${app}: ${kind} path ${JSON.stringify(value)} does not exist in the image`);
    }
    return;
  }
  if (!dbHas(layers, db, value)) {
    throw new TspodError(ErrorCode.BadInput, `app ${app}: ${kind} ${JSON.stringify(value)} is not in the image's ${db}`, {
      hint: `use a number or a ${kind} the image defines`,
    });
  }
}

/**
 * A --mount target as a path in the app's rootfs: a relative one is taken from
 * the root (`data` is `/data`); one with a `..` component is refused.
 */
export function mountTarget(target: string, what: string): string {
  const abs = target.startsWith('/') ? target : `/${target}`;
  const why = target === '' ? 'is empty' : imagePathProblem(abs);
  if (why) throw new TspodError(ErrorCode.BadInput, `${what}: target ${JSON.stringify(target)} ${why}`, { hint: 'give a path inside the app, like /data' });
  return path.posix.normalize(abs);
}

/** Per-app mounts win over global ones with the same target (first one kept). */
function mergeMounts(global: Array<{ volume: string; target: string }>, own: Array<{ volume: string; target: string }>): PodMount[] {
  const seen = new Set<string>();
  const out: PodMount[] = [];
  for (const m of [...own, ...global]) {
    const target = mountTarget(m.target, `--mount volume=${m.volume}`);
    if (seen.has(target)) continue;
    seen.add(target);
    out.push({ volume: m.volume, path: target });
  }
  return out;
}

// ---- apps from --pod-manifest ----

function readPodManifestFile(file: string): PodManifest {
  let m: PodManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as PodManifest;
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `--pod-manifest ${JSON.stringify(file)}: ${e instanceof SyntaxError ? 'not valid JSON' : (e as NodeJS.ErrnoException).code}`);
  }
  if (m?.acKind !== 'PodManifest') throw new TspodError(ErrorCode.BadInput, `--pod-manifest ${JSON.stringify(file)}: acKind must be "PodManifest"`);
  if (!Array.isArray(m.apps) || m.apps.length === 0) {
    throw new TspodError(ErrorCode.BadInput, `--pod-manifest ${JSON.stringify(file)}: the pod manifest has no apps`);
  }
  m.volumes ??= [];
  checkPodManifestPaths(m, `--pod-manifest ${JSON.stringify(file)}`);
  try {
    checkExposedPorts(m.ports);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `--pod-manifest ${JSON.stringify(file)}: ${(e as Error).message}`);
  }
  return m;
}

/**
 * Names and paths of a pod manifest that end up as paths on the host (app and
 * volume names are directories of the pod) or in an app's rootfs (mount paths,
 * working directories, mount points): names must be AC Names, paths absolute
 * without a `..` component.
 */
function checkPodManifestPaths(m: PodManifest, what: string): void {
  if (!Array.isArray(m.volumes)) throw new TspodError(ErrorCode.BadInput, `${what}: volumes must be a list`);
  for (const v of m.volumes) {
    if (typeof v?.name !== 'string' || !AC_NAME.test(v.name)) {
      throw new TspodError(ErrorCode.BadInput, `${what}: volume name ${JSON.stringify(v?.name ?? null)} is not an AC Name (lower-case letters, digits and dashes)`);
    }
    if (v.kind !== 'host' && v.kind !== 'empty') throw new TspodError(ErrorCode.BadInput, `${what}: volume ${v.name}: kind must be "host" or "empty"`);
    if (v.kind === 'host' && (typeof v.source !== 'string' || !v.source.startsWith('/'))) {
      throw new TspodError(ErrorCode.BadInput, `${what}: volume ${v.name}: source ${JSON.stringify(v.source ?? null)} is not an absolute path`);
    }
  }
  for (const pa of m.apps) {
    if (typeof pa?.name !== 'string' || !AC_NAME.test(pa.name)) {
      throw new TspodError(ErrorCode.BadInput, `${what}: app name ${JSON.stringify(pa?.name ?? null)} is not an AC Name (lower-case letters, digits and dashes)`);
    }
    if (pa.mounts !== undefined && !Array.isArray(pa.mounts)) throw new TspodError(ErrorCode.BadInput, `${what}: app ${pa.name}: mounts must be a list`);
    for (const mt of pa.mounts ?? []) {
      const why = imagePathProblem(mt?.path);
      if (why) throw new TspodError(ErrorCode.BadInput, `${what}: app ${pa.name}: mount path ${JSON.stringify(mt?.path ?? null)} ${why}`);
    }
    checkAppPaths(pa.app, `${what}: app ${pa.name}`, ErrorCode.BadInput);
  }
}

async function appsFromManifestFile(store: Store, file: string): Promise<ResolvedApp[]> {
  const m = readPodManifestFile(file);
  const names = new Set<string>();
  return m.apps.map((pa) => {
    if (!pa?.name || !pa.image?.id) throw new TspodError(ErrorCode.BadInput, `--pod-manifest: every app needs a name and an image id`);
    if (names.has(pa.name)) throw new TspodError(ErrorCode.BadInput, `multiple apps with name ${pa.name}`);
    names.add(pa.name);
    const id = store.images.resolve(pa.image.id);
    const image = store.images.get(id);
    if (image.record.kind === 'aci') checkAciPlatform(image.manifest);
    checkAppPaths(image.manifest.app, `image ${JSON.stringify(image.manifest.name)}`);
    const layers = layerDirs(store, image);
    const app = pa.app ?? image.manifest.app;
    if (!app?.exec?.length) throw new TspodError(ErrorCode.BadInput, `app ${pa.name}: no exec in the pod manifest or the image`);
    validateAppAgainstImage(pa.name, app, new ImageFs(layers), image);
    return { podApp: { ...pa, image: { ...pa.image, id }, app }, image, layers };
  });
}

// ---- volumes ----

/**
 * rkt's rule for each app's mount points, from the command line or a pod
 * manifest alike: an explicit mount at that path first, then the pod volume
 * named like the mount point, else an implicit empty volume `<app>-<name>`.
 * Whether the mount is read-only is stage1's to decide (the volume's readOnly
 * if it says, else the mount point's).
 */
function bindMountPoints(manifest: PodManifest, apps: ResolvedApp[]): void {
  const volumes = manifest.volumes!;
  for (const a of apps) {
    const mounts = a.podApp.mounts ?? (a.podApp.mounts = []);
    for (const mp of a.podApp.app?.mountPoints ?? []) {
      if (mounts.some((m) => path.posix.normalize(m.path) === path.posix.normalize(mp.path))) continue;
      if (volumes.some((v) => v.name === mp.name)) {
        mounts.push({ volume: mp.name, path: mp.path });
        continue;
      }
      const name = `${a.podApp.name}-${mp.name}`;
      log().warn(`no volume given for mount point ${mp.name} of app ${a.podApp.name}: using an empty volume ${name}`);
      volumes.push({ name, kind: 'empty', mode: '0755', uid: 0, gid: 0, readOnly: mp.readOnly });
      mounts.push({ volume: name, path: mp.path });
    }
  }
}

function validatePod(manifest: PodManifest, apps: ResolvedApp[], runtime: RuntimeFlags): void {
  const net = checkNet(runtime.net);
  checkIpc(runtime.ipc);
  const volumes = manifest.volumes ?? [];
  const names = new Set<string>();
  for (const v of volumes) {
    if (names.has(v.name)) throw new TspodError(ErrorCode.BadInput, `duplicate volume name ${JSON.stringify(v.name)}`, { hint: 'give each --volume its own name' });
    names.add(v.name);
    if (v.kind === 'host') {
      if (!v.source || !fs.existsSync(v.source)) {
        throw new TspodError(ErrorCode.BadInput, `volume ${v.name}: host source ${JSON.stringify(v.source)} does not exist`, {
          hint: 'create it first, or fix source=',
        });
      }
    }
  }
  const cgroups = apps.some((a) => a.podApp.annotations?.some((n) => n.name === DEVICES_ANNOTATION)) ? detectCgroups() : undefined;
  for (const a of apps) {
    try {
      const devices = appDevices(a.podApp.annotations); // a pod manifest's too
      const why = cgroups && !deviceCgroupKind(cgroups) ? uncheckedDeviceProblem(devices, describeLayout(cgroups)) : undefined;
      if (why) throw new Error(why);
    } catch (e) {
      throw new TspodError(ErrorCode.BadInput, `app ${a.podApp.name}: ${(e as Error).message}`);
    }
    for (const m of a.podApp.mounts ?? []) {
      if (!names.has(m.volume)) {
        throw new TspodError(ErrorCode.BadInput, `app ${a.podApp.name}: --mount names volume ${JSON.stringify(m.volume)}, which the pod does not have`, {
          hint: 'declare it with --volume',
        });
      }
    }
  }
  // Sysctls are the pod's (its namespaces are shared by its apps): the pod's and
  // every app's together, each namespace one of the pod's own.
  let sysctls = new Map<string, string>();
  try {
    sysctls = sysctlsFromIsolators(manifest.isolators, sysctls);
    for (const a of apps) sysctls = sysctlsFromIsolators(a.podApp.app?.isolators, sysctls);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, (e as Error).message);
  }
  const problem = sysctlNamespaceProblem(sysctls, { net: net.kind, ipc: runtime.ipc ?? 'auto' });
  if (problem) throw new TspodError(ErrorCode.BadInput, problem);
  if (runtime.interactive && manifest.apps.length > 1) {
    throw new TspodError(ErrorCode.BadInput, 'interactive option only supports one image', { hint: `this pod has ${manifest.apps.length} apps` });
  }
}

/** --dns*, --hosts-entry never put the pod's files into a volume (contract/dns.ts). */
function checkDnsAgainstVolumes(manifest: PodManifest, dns: PodDns | undefined): void {
  const problem = dns && dnsVolumeProblem(manifest.apps, dns);
  if (problem) throw new TspodError(ErrorCode.BadInput, problem.message, { hint: problem.hint });
}

/**
 * Images converted from Docker get their implicit volumes filled with the image's
 * content at that path (Docker's data-volume behaviour, as rkt does).
 */
async function prefillImplicitVolumes(podDir: string, manifest: PodManifest, apps: ResolvedApp[], userns?: UserNamespace): Promise<void> {
  for (const a of apps) {
    if (!annotationValue(a.image.manifest, 'appc.io/docker/repository')) continue;
    for (const mp of a.podApp.app?.mountPoints ?? []) {
      const volName = `${a.podApp.name}-${mp.name}`;
      const vol = manifest.volumes?.find((v) => v.name === volName);
      if (!vol || vol.kind !== 'empty') continue;
      const dest = path.join(podDir, POD_FILES.sharedVolume(volName));
      // The image's own directory at that path, as overlay shows it: symlinks
      // followed inside the image only, none on the host (native/image-fs.ts).
      const found = new ImageFs(a.layers).resolve(mp.path);
      fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
      if (!found || !found.stat.isDirectory()) continue;
      await renderLayers([...found.merged].reverse(), dest);
      if (userns) shiftTree(dest, userns); // (its top directory: stage1, from the volume's uid/gid)
      const st = found.stat;
      fs.chmodSync(dest, st.mode & 0o7777);
      fs.chownSync(dest, st.uid, st.gid);
      vol.mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      vol.uid = st.uid;
      vol.gid = st.gid;
    }
  }
  fs.writeFileSync(path.join(podDir, POD_FILES.manifest), JSON.stringify(manifest, null, 2));
}

// ---- overlay ----

const FS_MAGIC: Record<number, string> = { 0x794c7630: 'overlay', 0x2fc12fc1: 'zfs', 0x61756673: 'aufs' };

/** true, or why overlayfs cannot be used for pods under dataDir. */
export function overlaySupport(dataDir: string): true | string {
  try {
    if (!/\toverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'))) return 'overlay filesystem not supported by the kernel';
    const type = FS_MAGIC[Number(fs.statfsSync(dataDir).type)];
    if (type) return `${dataDir} is on ${type}, which cannot hold overlay upper directories`;
  } catch (e) {
    return `cannot check overlay support: ${(e as Error).message}`;
  }
  return true;
}

// ---- writing the pod ----

function writePodFiles(
  dir: string,
  manifest: PodManifest,
  apps: ResolvedApp[],
  stage1: StoredImage,
  stage1Layers: string[],
  runtime: RuntimeFlags,
  dns: PodDns | undefined,
): void {
  const write = (rel: string, data: string) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
    fs.writeFileSync(file, data);
  };
  write(POD_FILES.manifest, JSON.stringify(manifest, null, 2));
  write(POD_FILES.created, '');
  write(POD_FILES.stage1Manifest, JSON.stringify(stage1.manifest, null, 2));
  write(POD_FILES.stage1Layers, JSON.stringify(stage1Layers));
  for (const a of apps) {
    write(POD_FILES.appManifest(a.podApp.name), JSON.stringify(a.image.manifest, null, 2));
    // overlayfs ignores an opaque marker on a lower layer's root: drop the layers it hides.
    write(POD_FILES.appLayers(a.podApp.name), JSON.stringify(visibleLayers(a.layers)));
  }
  write(POD_FILES.runtimeDefaults, JSON.stringify(runtime));
  if (dns) write(POD_FILES.dns, JSON.stringify(dns));
  const refs: PodStoreRefs = {
    images: [stage1.record.id, ...apps.map((a) => a.image.record.id)],
    layers: [...stage1.record.layers, ...apps.flatMap((a) => a.image.record.layers)],
  };
  write(POD_FILES.storeRefs, JSON.stringify(refs));
  for (const v of manifest.volumes ?? []) if (v.kind === 'empty') fs.mkdirSync(path.join(dir, POD_FILES.sharedVolume(v.name)), { recursive: true });
}

export type { PodVolume };
