// The fixture images built by fixtures/build.sh (umoci, skopeo, GNU tar; never
// tspod's own code), how to name each to tspod, how to push each to a test
// registry, and where umoci's reference unpack of each is.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './paths.js';

export const FIXTURES_DIR = path.join(REPO_ROOT, 'fixtures', 'out');
/** The OCI image layout holding every standard fixture tag. */
export const OCI_LAYOUT = path.join(FIXTURES_DIR, 'oci');
/** The layout of the benchmark image (tag `big`), built only on request. */
export const BIG_LAYOUT = path.join(FIXTURES_DIR, 'big');
/** skopeo's signature policy for the fixtures (accept anything). */
export const SKOPEO_POLICY = path.join(FIXTURES_DIR, 'policy.json');
const BUILD_SCRIPT = path.join(REPO_ROOT, 'fixtures', 'build.sh');

export type FixtureKind = 'oci-layout' | 'oci-archive' | 'docker-archive' | 'aci';

export interface RegistryPush {
  /** skopeo source reference, e.g. `oci:/…/fixtures/out/oci:multi`. */
  skopeoSource: string;
  /** Manifest format the registry will serve: OCI as stored, or Docker schema 2 (`--format v2s2`). */
  format: 'oci' | 'v2s2';
  /** Push every image of an index (`skopeo copy --all`). */
  all: boolean;
}

export interface Fixture {
  name: string;
  kind: FixtureKind;
  /** What to give tspod for the local form: `oci:DIR:TAG`, `oci-archive:FILE:TAG`, `docker-archive:FILE`, or an ACI path. */
  source: string;
  /** The file, for archives and ACIs. */
  file?: string;
  /** The layout tag, for layout fixtures. */
  tag?: string;
  /** How to put it in a registry; absent when skopeo cannot keep its form there. */
  registry?: RegistryPush;
  /** umoci's reference bundle: `rootfs/` and umoci's runtime `config.json`. */
  refDir: string;
  /** `refDir/rootfs`: what rendering the image must produce. */
  refRootfs: string;
  description: string;
}

function layoutFixture(name: string, tag: string, ref: string, description: string, registry?: Partial<RegistryPush> | null, layout = OCI_LAYOUT): Fixture {
  const refDir = path.join(FIXTURES_DIR, 'ref', ref);
  const src = `oci:${layout}:${tag}`;
  return {
    name,
    kind: 'oci-layout',
    source: src,
    tag,
    registry: registry === null ? undefined : { skopeoSource: src, format: 'oci', all: false, ...registry },
    refDir,
    refRootfs: path.join(refDir, 'rootfs'),
    description,
  };
}

function fileFixture(name: string, kind: FixtureKind, file: string, source: string, ref: string, description: string, registry?: RegistryPush): Fixture {
  const refDir = path.join(FIXTURES_DIR, 'ref', ref);
  return { name, kind, source, file, registry, refDir, refRootfs: path.join(refDir, 'rootfs'), description };
}

const MULTI_OCI_TAR = path.join(FIXTURES_DIR, 'multi-oci.tar');
const MULTI_DOCKER_TAR = path.join(FIXTURES_DIR, 'multi-docker.tar');
const ACI = path.join(FIXTURES_DIR, 'busybox.aci');

/** Every standard fixture by name (the big one is separate: see BIG_FIXTURE). */
export const FIXTURES: Readonly<Record<string, Fixture>> = Object.freeze(
  Object.fromEntries(
    [
      layoutFixture('busybox', 'busybox', 'busybox', 'busybox-static, one layer, simple config'),
      layoutFixture('multi', 'multi', 'multi', '4 layers: whiteouts, deleted+recreated dir, opaque dir (.wh..wh..opq), dir<->file swaps, symlinks, hardlink, setuid/setgid, uid 1000 files, 0600 file, empty dir, fifo, long and unicode names; rich config (user `user`)'),
      layoutFixture('index', 'index', 'index', 'OCI image index: linux/arm64/v8 first, then linux/amd64 (each has /etc/platform naming its arch)', { all: true }),
      layoutFixture('manifest-list', 'index', 'index', 'the index pushed as a Docker manifest list (schema 2)', { all: true, format: 'v2s2' }),
      layoutFixture('schema2', 'multi', 'schema2', '`multi` as Docker schema 2 (registry form; locally the same as multi)', { format: 'v2s2' }),
      layoutFixture('zstd', 'zstd', 'zstd', '`multi` with zstd-compressed layers (tar+zstd)'),
      layoutFixture('uncompressed', 'uncompressed', 'uncompressed', '`busybox` with an uncompressed layer (layout only: skopeo gzips on push)', null),
      fileFixture('oci-archive', 'oci-archive', MULTI_OCI_TAR, `oci-archive:${MULTI_OCI_TAR}:multi`, 'oci-archive', '`multi` as an oci-archive (tag multi)'),
      fileFixture('docker-archive', 'docker-archive', MULTI_DOCKER_TAR, `docker-archive:${MULTI_DOCKER_TAR}`, 'docker-archive', '`multi` as a docker-archive (example.com/multi:latest)'),
      fileFixture('aci', 'aci', ACI, ACI, 'aci', 'appc ACI example.com/busybox-aci (uncompressed)'),
      fileFixture('aci-gz', 'aci', `${ACI}.gz`, `${ACI}.gz`, 'aci', 'the ACI, gzip'),
      fileFixture('aci-bz2', 'aci', `${ACI}.bz2`, `${ACI}.bz2`, 'aci', 'the ACI, bzip2'),
      fileFixture('aci-xz', 'aci', `${ACI}.xz`, `${ACI}.xz`, 'aci', 'the ACI, xz'),
    ].map((f) => [f.name, Object.freeze(f)]),
  ),
);

/** The ~180 MB benchmark image (3 layers); call ensureBigFixture() first. */
export const BIG_FIXTURE: Fixture = Object.freeze(layoutFixture('big', 'big', 'big', '3 layers of real files from /usr, ~180 MB', {}, BIG_LAYOUT));

/** The reference of the arm64 image of `index`, for tests that ask for that platform. */
export const INDEX_ARM64_REF = path.join(FIXTURES_DIR, 'ref', 'index-arm64', 'rootfs');

/** Names of the fixtures the differential test covers (every standard one). */
export const FIXTURE_NAMES: readonly string[] = Object.freeze(Object.keys(FIXTURES));

export function fixture(name: string): Fixture {
  if (name === 'big') return BIG_FIXTURE;
  const f = FIXTURES[name];
  if (!f) throw new Error(`no fixture named ${JSON.stringify(name)} (have: ${FIXTURE_NAMES.join(', ')}, big)`);
  return f;
}

function runBuild(args: string[]): void {
  const r = spawnSync('bash', [BUILD_SCRIPT, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`fixtures/build.sh ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

/** Builds the standard fixtures unless they are up to date (make test has done it already). */
export function ensureFixtures(): void {
  if (!fs.existsSync(path.join(FIXTURES_DIR, '.stamp'))) runBuild([]);
}

/** Builds the benchmark image unless it is there (slow the first time). */
export function ensureBigFixture(): void {
  if (!fs.existsSync(path.join(FIXTURES_DIR, '.stamp-big'))) runBuild(['big']);
}

// ---- reading the fixtures with plain JSON (an oracle independent of tspod) ----

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface LayoutImage {
  /** The descriptor in index.json for the tag. */
  descriptor: Descriptor;
  /** The manifest (for an index: the index JSON itself). */
  manifest: Record<string, unknown> & { layers?: Descriptor[]; manifests?: Descriptor[]; config?: Descriptor };
  /** The image config (absent for an index). */
  config?: Record<string, unknown> & { config?: Record<string, unknown>; architecture?: string; os?: string; rootfs?: { diff_ids: string[] } };
}

export function readBlob(layout: string, digest: string): Buffer {
  const [alg, hex] = digest.split(':');
  return fs.readFileSync(path.join(layout, 'blobs', alg!, hex!));
}

/** The manifest and config that a layout tag names. */
export function readLayoutImage(tag: string, layout = OCI_LAYOUT): LayoutImage {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const descriptor = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!descriptor) throw new Error(`no tag ${tag} in ${layout}`);
  const manifest = JSON.parse(readBlob(layout, descriptor.digest).toString('utf8')) as LayoutImage['manifest'];
  const config = manifest.config ? (JSON.parse(readBlob(layout, manifest.config.digest).toString('utf8')) as LayoutImage['config']) : undefined;
  return { descriptor, manifest, config };
}

/** umoci's runtime-spec config.json for a fixture's reference (user resolved to uid/gid, env, cwd, args). */
export function refRuntimeConfig(name: string): { process: { args?: string[]; env?: string[]; cwd: string; user: { uid: number; gid: number; additionalGids?: number[] } } } & Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(fixture(name).refDir, 'config.json'), 'utf8'));
}
