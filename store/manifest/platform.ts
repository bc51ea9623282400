// Platforms (os/architecture/variant, in Go's GOOS/GOARCH names as OCI uses them):
// the host's, choosing an image index entry for it, and checking a single image's
// config against it.
//
// Matching rules:
//  - os and architecture must be equal after normalising aliases (x86_64 → amd64,
//    aarch64 → arm64, i386/i686 → 386, armhf → arm/v7, armel → arm/v6).
//  - arm64: no variant means v8. arm: no variant means v7; a v7 host also runs v6
//    and v5 images (the highest one present wins, an exact match first).
//  - amd64: an entry with no variant (or v1) is an exact match; v2/v3/v4 entries
//    are used only when no plain one exists and /proc/cpuinfo shows the CPU has the
//    features of that level.
//  - entries without a platform are used only when the index has nothing else that
//    could be an image, and exactly one of them; the config check then decides.
import fs from 'node:fs';
import os from 'node:os';
import { TspodError, ErrorCode } from '../../native/errors.js';
import type { Descriptor, ImageConfig, ImageIndex } from './oci.js';
import { manifestKind } from './oci.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  i386: { architecture: '386' },
  i486: { architecture: '386' },
  i586: { architecture: '386' },
  i686: { architecture: '386' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  armv5l: { architecture: 'arm', variant: 'v5' },
  armv6l: { architecture: 'arm', variant: 'v6' },
  armv7l: { architecture: 'arm', variant: 'v7' },
};

/** Lower-cases and resolves aliases; fills in the default variant for arm and arm64. */
export function normalizePlatform(p: Platform): Platform {
  const osName = p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[arch];
  if (alias) {
    arch = alias.architecture;
    variant ??= alias.variant;
  }
  if (arch === 'arm64' && (variant === undefined || variant === '8' || variant === 'v8')) variant = 'v8';
  if (arch === 'arm') {
    if (variant === undefined) variant = 'v7';
    else if (/^\d+$/.test(variant)) variant = `v${variant}`;
  }
  if (arch === 'amd64' && variant === 'v1') variant = undefined;
  return variant === undefined ? { os: osName, architecture: arch } : { os: osName, architecture: arch, variant };
}

/** `linux/arm/v7`, `linux/amd64`. */
export function formatPlatform(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os || 'unknown', p.architecture || 'unknown', p.variant].filter(Boolean).join('/');
}

let cachedHost: Platform | undefined;

/** The platform this process runs on, in OCI (GOARCH) names. */
export function hostPlatform(): Platform {
  if (cachedHost) return cachedHost;
  let architecture: string;
  let variant: string | undefined;
  switch (process.arch) {
    case 'x64':
      architecture = 'amd64';
      break;
    case 'arm64':
      architecture = 'arm64';
      variant = 'v8';
      break;
    case 'arm': {
      architecture = 'arm';
      const v = (process.config.variables as unknown as Record<string, unknown>).arm_version;
      variant = `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}`;
      break;
    }
    case 'ia32':
      architecture = '386';
      break;
    case 'ppc64':
      architecture = os.endianness() === 'LE' ? 'ppc64le' : 'ppc64';
      break;
    default:
      // s390x, riscv64, loong64, mips64el… are already GOARCH names.
      architecture = process.arch;
  }
  cachedHost = variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture };
  return cachedHost;
}

// amd64 micro-architecture levels (x86-64-v2/v3/v4), from /proc/cpuinfo flags.
const AMD64_LEVELS: Array<[number, string[]]> = [
  [2, ['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3']],
  [3, ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave']],
  [4, ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']],
];
let cachedAmd64Level: number | undefined;

function hostAmd64Level(): number {
  if (cachedAmd64Level !== undefined) return cachedAmd64Level;
  let level = 1;
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    const flags = new Set((line ?? '').replace(/^flags\s*:/, '').trim().split(/\s+/));
    for (const [n, need] of AMD64_LEVELS) {
      if (need.every((f) => flags.has(f))) level = n;
      else break;
    }
  } catch {
    /* no /proc: assume the baseline */
  }
  cachedAmd64Level = level;
  return level;
}

/**
 * How well an image for `image` fits a host `host`: a positive score (higher is
 * better, 1000 an exact match) or 0 when it cannot run there.
 */
export function platformScore(host: Platform, image: Platform): number {
  const h = normalizePlatform(host);
  const i = normalizePlatform(image);
  if (h.os !== i.os || h.architecture !== i.architecture) return 0;
  if (h.variant === i.variant) return 1000;
  const hv = versionNumber(h.variant);
  const iv = versionNumber(i.variant);
  if (h.architecture === 'arm') {
    return hv !== undefined && iv !== undefined && iv < hv ? 500 + iv : 0;
  }
  if (h.architecture === 'amd64') {
    // host variant is normally unset: compare with the CPU's level
    const level = hv ?? hostAmd64Level();
    return iv !== undefined && iv <= level ? 500 + iv : 0;
  }
  return 0;
}

function versionNumber(v: string | undefined): number | undefined {
  const m = v ? /^v(\d+)$/.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * The entry of an index to use on `platform` (the host by default). Throws
 * ErrorCode.Platform, listing what the index has, when nothing fits.
 */
export function selectPlatformManifest(index: ImageIndex, opts: { platform?: Platform; what: string }): Descriptor {
  const platform = opts.platform ?? hostPlatform();
  let best: Descriptor | undefined;
  let bestScore = 0;
  for (const d of index.manifests) {
    if (!d.platform || !manifestKind(d.mediaType)) continue;
    const score = platformScore(platform, d.platform);
    if (score > bestScore) {
      best = d;
      bestScore = score;
    }
  }
  if (best) return best;
  const unlabelled = index.manifests.filter((d) => !d.platform && manifestKind(d.mediaType));
  const labelled = index.manifests.filter((d) => d.platform && manifestKind(d.mediaType));
  if (labelled.length === 0 && unlabelled.length === 1) return unlabelled[0];
  const has = [...new Set(index.manifests.filter((d) => d.platform && !isAttestation(d)).map((d) => formatPlatform(d.platform!)))];
  throw new TspodError(ErrorCode.Platform, `${opts.what} has no image for ${formatPlatform(platform)}`, {
    hint: has.length ? `it has ${has.join(', ')}` : unlabelled.length ? `it has ${unlabelled.length} images without a platform` : 'it lists no images',
  });
}

function isAttestation(d: Descriptor): boolean {
  return d.platform?.os === 'unknown' && d.platform.architecture === 'unknown';
}

/**
 * Refuses an image built for another os or architecture, rkt-style:
 * `bad arch "arm64": docker://x is an image for linux/arm64, this host is linux/amd64`.
 * A config that leaves os or architecture empty is not checked on that point.
 */
export function checkConfigPlatform(config: Pick<ImageConfig, 'os' | 'architecture' | 'variant'>, source: string, platform?: Platform): void {
  const host = normalizePlatform(platform ?? hostPlatform());
  if (!config.os && !config.architecture) return;
  const image = normalizePlatform({ os: config.os || host.os, architecture: config.architecture || host.architecture, variant: config.variant });
  const detail = `${source} is an image for ${formatPlatform({ os: config.os, architecture: config.architecture, variant: config.variant })}, this host is ${formatPlatform(host)}`;
  if (image.os !== host.os) {
    throw new TspodError(ErrorCode.Platform, `bad os ${JSON.stringify(config.os)}`, { hint: detail });
  }
  if (image.architecture !== host.architecture) {
    throw new TspodError(ErrorCode.Platform, `bad arch ${JSON.stringify(config.architecture)}`, { hint: detail });
  }
  if (config.variant && platformScore(host, image) === 0) {
    throw new TspodError(ErrorCode.Platform, `bad arch variant ${JSON.stringify(`${config.architecture}/${config.variant}`)}`, { hint: detail });
  }
}
