// Docker image references: `docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]` (also with
// the shorter `docker:` prefix, or with no prefix), parsed with Docker's rules:
//  - the first path component is a registry host when it contains a '.' or a ':',
//    is `localhost`, or has upper-case letters; otherwise the registry is docker.io;
//  - on docker.io a one-component name gets `library/` in front (busybox →
//    docker.io/library/busybox); `index.docker.io` is the same registry;
//  - repository path components are lower-case alphanumerics joined by '.', '_',
//    '__' or dashes; the whole name is at most 255 characters;
//  - the tag is 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-', default `latest`;
//  - a digest (`@sha256:<hex>`) pins the manifest; with both a tag and a digest the
//    digest wins (the tag is kept for information).
import { TspodError, ErrorCode } from '../../native/errors.js';
import { parseDigest } from '../digest.js';

export const DOCKER_HUB = 'docker.io';
/** Where docker.io's registry API actually lives. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface DockerReference {
  /** `docker.io`, `quay.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** `library/busybox`, `team/app`. */
  repository: string;
  /** The tag asked for (`latest` when neither a tag nor a digest was given). */
  tag?: string;
  /** `sha256:<hex>` when pinned by digest. */
  digest?: string;
  /** What goes into `/v2/<repository>/manifests/<reference>`: the digest, else the tag. */
  reference: string;
  /** `registry/repository`. */
  repoName: string;
  /** The name recorded in the store: `registry/repository:tag` or `registry/repository@digest`. */
  name: string;
  /** `docker://` + name. */
  url: string;
  /** host[:port] of the registry API (registry-1.docker.io for docker.io). */
  endpoint: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::([0-9]+))?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_SHAPE_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const MAX_NAME = 255;

/** True when the argument carries a docker image prefix (`docker://` or `docker:`). */
export function hasDockerPrefix(s: string): boolean {
  return s.startsWith('docker:');
}

function bad(input: string, why: string, hint?: string): TspodError {
  return new TspodError(ErrorCode.BadInput, `invalid image reference ${JSON.stringify(input)}: ${why}`, hint ? { hint } : undefined);
}

/** Parses a Docker image reference; throws BadInput with the reason when it is malformed. */
export function parseDockerReference(input: string): DockerReference {
  let s = input.trim();
  if (s.startsWith('docker://')) s = s.slice('docker://'.length);
  else if (s.startsWith('docker:')) s = s.slice('docker:'.length);
  if (s === '') throw bad(input, 'no image name', 'write docker://[REGISTRY/]REPOSITORY[:TAG|@DIGEST]');
  if (/\s/.test(s)) throw bad(input, 'contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw bad(input, 'a URL is not an image name', 'write docker://[REGISTRY/]REPOSITORY[:TAG|@DIGEST]');

  const split = splitRef(s);
  const rest = split.rest;
  const digest = split.digest;
  let tag = split.tag;
  if (digest !== undefined) {
    if (!DIGEST_SHAPE_RE.test(digest)) throw bad(input, `${JSON.stringify(digest)} is not a digest`, 'write @sha256:<64 hex digits>');
    try {
      parseDigest(digest);
    } catch (e) {
      throw bad(input, (e as Error).message);
    }
  }

  if (tag !== undefined) {
    if (!TAG_RE.test(tag)) {
      throw bad(input, tag === '' ? 'empty tag' : `invalid tag ${JSON.stringify(tag)}`, 'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
    }
  }

  let registry = DOCKER_HUB;
  let path = rest;
  const first = rest.indexOf('/');
  if (first >= 0) {
    const head = rest.slice(0, first);
    if (head.includes('.') || head.includes(':') || head === 'localhost' || head.toLowerCase() !== head) {
      registry = head;
      path = rest.slice(first + 1);
      const m = DOMAIN_RE.exec(registry);
      if (!m) throw bad(input, `invalid registry host ${JSON.stringify(registry)}`);
      if (m[1] !== undefined) {
        const port = Number(m[1]);
        if (!(port >= 1 && port <= 65535) || m[1].startsWith('0')) throw bad(input, `invalid port ${JSON.stringify(m[1])} in ${JSON.stringify(registry)}`);
      }
      if (registry.toLowerCase() === 'index.docker.io' || registry.toLowerCase() === DOCKER_HUB) registry = DOCKER_HUB;
    }
  } else if (rest.includes(':')) {
    throw bad(input, 'invalid name');
  }

  if (path === '') throw bad(input, 'no repository name after the registry');
  for (const comp of path.split('/')) {
    if (comp === '') throw bad(input, `empty path component in ${JSON.stringify(path)}`);
    if (!PATH_COMPONENT_RE.test(comp)) {
      if (comp.toLowerCase() !== comp && PATH_COMPONENT_RE.test(comp.toLowerCase())) {
        throw bad(input, `repository name ${JSON.stringify(path)} must be lower-case`);
      }
      throw bad(input, `invalid repository name component ${JSON.stringify(comp)}`, 'use lower-case letters, digits, and ".", "_", "-" between them');
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;

  const repoName = `${registry}/${path}`;
  if (repoName.length > MAX_NAME) throw bad(input, `name longer than ${MAX_NAME} characters`);
  if (!tag && !digest) tag = 'latest';
  const name = digest ? `${repoName}@${digest}` : `${repoName}:${tag}`;
  return {
    registry,
    repository: path,
    tag,
    digest,
    reference: digest ?? tag!,
    repoName,
    name,
    url: `docker://${name}`,
    endpoint: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
  };
}

/**
 * Splits a recorded image name (`host/repo:tag`, `host/repo@digest`, `name`) into the
 * name and its tag or digest, without applying Docker's defaults.
 */
export function splitImageName(name: string): { repoName: string; tag?: string; digest?: string } {
  const { rest, tag, digest } = splitRef(name);
  return { repoName: rest, tag: tag || undefined, digest: digest || undefined };
}

/**
 * `name[:tag][@digest]` → its parts, as written (a present but empty tag or digest
 * is ''). A tag is after the last ':' that comes after the last '/'.
 */
function splitRef(s: string): { rest: string; tag?: string; digest?: string } {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { rest, tag, digest };
}
