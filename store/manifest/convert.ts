// OCI / Docker image config → the internal appc ImageManifest, following docker2aci
// (the converter rkt used) wherever it had a rule:
//  - name: the image name without tag or digest (`127.0.0.1:5000/busybox`,
//    `docker.io/library/busybox`); labels: version (the tag, else the digest, else
//    `latest`), os, and arch in appc's names (amd64, i386, aarch64, armv6l, armv7l,
//    ppc64le, s390x; others as OCI names them);
//  - exec: Entrypoint followed by Cmd;
//  - user/group: "" → 0/0; "uid:gid" → uid/gid; a lone user → the same value for the
//    group (docker2aci's convention: the image's /etc/passwd is not read);
//  - environment: Env split at the first '=', a later duplicate replaces an earlier one;
//  - ports: each ExposedPorts key `8080/tcp` → { name: "8080-tcp", protocol, port },
//    a key without a protocol means tcp; sorted by name;
//  - mountPoints: each Volumes path → name "volume-" + the path sanitised as an appc
//    name (`/var/lib/data` → `volume-var-lib-data`), duplicates get `-1`, `-2`…;
//    sorted by name; a path that is not absolute or has a `..` component (and a
//    WorkingDir like that) makes the image refused (BadFormat);
//  - annotations: `created`, `authors`, docker2aci's `appc.io/docker/*` set
//    (repository, tag, registryurl, originalname, imageid, manifesthash, entrypoint,
//    cmd), and every config Label as it is (the converter's own annotations win on a
//    clash).
// `appc.io/docker/repository` is set for every converted image: stage0 uses it to know
// an image has Docker semantics (implicit volumes filled from the image).
import path from 'node:path';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { imagePathProblem } from '../../native/image-fs.js';
import { AC_VERSION, checkAppPaths, type AppcApp, type AppcImageManifest, type AppcMountPoint, type AppcPort, type NameValue } from './appc.js';
import type { ImageConfig } from './oci.js';
import { normalizePlatform } from './platform.js';
import { splitImageName } from '../sources/reference.js';

export interface ConvertOptions {
  /** Names recorded for the image; the first one names the appc manifest. */
  names: string[];
  /** Where it came from (`docker://host/repo:tag`, `oci:/dir:tag`). */
  source: string;
  /** Digest of the image manifest (`sha256:…`). */
  manifestDigest: string;
  /** Digest of the config (Docker's image ID); recorded as appc.io/docker/imageid when given. */
  configDigest?: string;
}

export const DockerAnnotation = {
  originalName: 'appc.io/docker/originalname',
  registryUrl: 'appc.io/docker/registryurl',
  repository: 'appc.io/docker/repository',
  tag: 'appc.io/docker/tag',
  imageId: 'appc.io/docker/imageid',
  manifestHash: 'appc.io/docker/manifesthash',
  entrypoint: 'appc.io/docker/entrypoint',
  cmd: 'appc.io/docker/cmd',
} as const;

/** appc's SanitizeACName: lower-case, every other character → '-', no '-' at the ends. */
export function sanitizeAcName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** GOOS/GOARCH(/variant) → appc's os and arch label values (appc's ToAppcOSArch). */
export function toAppcArch(architecture: string, variant?: string): string {
  const p = normalizePlatform({ os: 'linux', architecture, variant });
  switch (p.architecture) {
    case '386':
      return 'i386';
    case 'arm64':
      return 'aarch64';
    case 'arm':
      return variant ? (p.variant === 'v6' || p.variant === 'v5' ? 'armv6l' : 'armv7l') : 'armv6l';
    default:
      return p.architecture;
  }
}

/** Docker's User → appc user and group (docker2aci's rules). */
export function dockerUserToAppc(user: string | undefined): { user: string; group: string } {
  if (!user) return { user: '0', group: '0' };
  const i = user.indexOf(':');
  if (i < 0) return { user, group: user };
  const u = user.slice(0, i) || '0';
  const g = user.slice(i + 1) || u;
  return { user: u, group: g };
}

function convertPorts(exposed: Record<string, object> | undefined, what: string): AppcPort[] {
  const ports: AppcPort[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const m = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(key.trim());
    if (!m) throw new TspodError(ErrorCode.BadFormat, `${what}: exposed port ${JSON.stringify(key)} is not PORT[/PROTOCOL]`);
    const port = Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : port;
    const protocol = (m[3] ?? 'tcp').toLowerCase();
    if (port < 1 || port > 65535 || end < port || end > 65535) {
      throw new TspodError(ErrorCode.BadFormat, `${what}: exposed port ${JSON.stringify(key)} is out of range`);
    }
    const p: AppcPort = { name: `${m[2] !== undefined ? `${port}-${end}` : port}-${protocol}`, protocol, port };
    if (end > port) p.count = end - port + 1;
    ports.push(p);
  }
  return ports.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function convertVolumes(volumes: Record<string, object> | undefined, what: string): AppcMountPoint[] {
  const seen = new Map<string, number>();
  const mps: AppcMountPoint[] = [];
  for (const p of Object.keys(volumes ?? {}).sort()) {
    // A volume is a directory of the container: `/../../tmp/x` or `data` could
    // only be meant to reach the host (Docker refuses both at run time).
    const why = imagePathProblem(p);
    if (why) throw new TspodError(ErrorCode.BadFormat, `${what}: volume ${JSON.stringify(p)} ${why}`, { hint: 'refusing the image' });
    let name = sanitizeAcName(path.posix.join('volume', p));
    const n = seen.get(name);
    if (n !== undefined) {
      seen.set(name, n + 1);
      name = `${name}-${n}`;
    } else {
      seen.set(name, 1);
    }
    mps.push({ name, path: p });
  }
  return mps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function convertEnv(env: string[] | undefined): NameValue[] {
  const out: NameValue[] = [];
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i <= 0) continue;
    const name = e.slice(0, i);
    const value = e.slice(i + 1);
    const existing = out.find((x) => x.name === name);
    if (existing) existing.value = value;
    else out.push({ name, value });
  }
  return out;
}

/** The part of a source string that names the image: `docker://h/r:t` → `h/r:t`. */
function nameFromSource(source: string): string {
  return source.replace(/^[a-z-]+:(\/\/)?/, '');
}

export function ociConfigToAppc(config: ImageConfig, opts: ConvertOptions): AppcImageManifest {
  const what = `config of ${opts.source}`;
  const primary = opts.names[0] ?? nameFromSource(opts.source);
  const { repoName, tag, digest } = splitImageName(primary);
  const name = repoName || primary || 'image';

  const labels: NameValue[] = [{ name: 'version', value: tag ?? digest ?? 'latest' }];
  if (config.os) labels.push({ name: 'os', value: config.os.toLowerCase() });
  if (config.architecture) labels.push({ name: 'arch', value: toAppcArch(config.architecture, config.variant) });

  const annotations = new Map<string, string>();
  for (const [k, v] of Object.entries(config.config?.Labels ?? {})) annotations.set(k, v);
  const set = (k: string, v: string | undefined) => {
    if (v) annotations.set(k, v);
  };
  set('authors', config.author);
  set('created', config.created);

  // docker2aci's annotations. The registry is the first path component when it looks
  // like a host (the name comes from parseDockerReference, so docker.io is explicit).
  const slash = name.indexOf('/');
  const head = slash > 0 ? name.slice(0, slash) : '';
  const isHost = head !== '' && (head.includes('.') || head.includes(':') || head === 'localhost');
  set(DockerAnnotation.originalName, opts.source.startsWith('docker:') ? nameFromSource(opts.source) : undefined);
  set(DockerAnnotation.registryUrl, isHost ? head : undefined);
  set(DockerAnnotation.repository, isHost ? name.slice(slash + 1) : name);
  set(DockerAnnotation.tag, tag);
  set(DockerAnnotation.imageId, opts.configDigest);
  set(DockerAnnotation.manifestHash, opts.manifestDigest);

  const manifest: AppcImageManifest = {
    acKind: 'ImageManifest',
    acVersion: AC_VERSION,
    name,
    labels,
  };

  const cc = config.config;
  if (cc) {
    const exec = [...(cc.Entrypoint ?? []), ...(cc.Cmd ?? [])];
    const { user, group } = dockerUserToAppc(cc.User);
    const app: AppcApp = { user, group };
    if (exec.length) app.exec = exec;
    const env = convertEnv(cc.Env);
    if (env.length) app.environment = env;
    if (cc.WorkingDir) {
      const why = imagePathProblem(cc.WorkingDir);
      if (why) throw new TspodError(ErrorCode.BadFormat, `${what}: working directory ${JSON.stringify(cc.WorkingDir)} ${why}`, { hint: 'refusing the image' });
      app.workingDirectory = cc.WorkingDir;
    }
    const mountPoints = convertVolumes(cc.Volumes, what);
    if (mountPoints.length) app.mountPoints = mountPoints;
    const ports = convertPorts(cc.ExposedPorts, what);
    if (ports.length) app.ports = ports;
    checkAppPaths(app, what);
    manifest.app = app;
    if (cc.Entrypoint?.length) set(DockerAnnotation.entrypoint, JSON.stringify(cc.Entrypoint));
    if (cc.Cmd?.length) set(DockerAnnotation.cmd, JSON.stringify(cc.Cmd));
  }

  manifest.annotations = [...annotations].map(([k, v]) => ({ name: k, value: v }));
  return manifest;
}
