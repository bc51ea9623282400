// Registry credentials, read from the files podman, skopeo and docker write
// (containers-auth.json(5)). Files are searched in this order; the first file that
// has an entry for the registry wins:
//   1. $REGISTRY_AUTH_FILE if set, else ${XDG_RUNTIME_DIR}/containers/auth.json
//      (/run/containers/<uid>/auth.json when XDG_RUNTIME_DIR is unset) — where
//      `podman login` writes;
//   2. ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json;
//   3. ${DOCKER_CONFIG:-~/.docker}/config.json — where `docker login` writes;
//   4. ~/.dockercfg (the legacy format: the map of registries at the top level).
// TSPOD_AUTH_FILES (a ':'-separated list) replaces the whole list: for tests, and for
// anyone who keeps credentials elsewhere.
//
// Within a file, keys may be a registry (`quay.io`, `127.0.0.1:5000`), a namespace
// (`quay.io/team` or `quay.io/team/app`; the longest matching one wins), or a URL as
// old docker versions wrote them (`https://index.docker.io/v1/`). docker.io,
// index.docker.io and registry-1.docker.io are the same registry.
// An entry holds `auth` (base64 of `user:password`) or `username` and `password`.
// Credential helpers (`credHelpers`, `credsStore`) and identity tokens are not
// supported; such entries are skipped with a debug message.
//
// Secrets never reach a log line or an error message: only the user name and the
// file they came from do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log } from '../../native/log.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials {
  username: string;
  password: string;
  /** The file they were read from, for messages. */
  source: string;
}

/** The files searched, in order. */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.TSPOD_AUTH_FILES !== undefined) return env.TSPOD_AUTH_FILES.split(':').filter(Boolean);
  const home = env.HOME || os.homedir();
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  else if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  else files.push(path.join('/run/containers', String(process.getuid?.() ?? 0), 'auth.json'));
  files.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'));
  files.push(path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'));
  files.push(path.join(home, '.dockercfg'));
  return files;
}

const HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);

/** A key as written in an auth file → `host[:port][/path]`, lower-case host, docker.io for the hub. */
export function normalizeAuthKey(key: string): string {
  let k = key.trim();
  const hadScheme = /^[a-z]+:\/\//i.test(k);
  k = k.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  const slash = k.indexOf('/');
  let host = slash >= 0 ? k.slice(0, slash) : k;
  // URL keys (`https://index.docker.io/v1/`) name a registry; their path is API noise.
  let rest = slash >= 0 && !hadScheme ? k.slice(slash) : '';
  host = host.toLowerCase();
  if (HUB_ALIASES.has(host)) host = DOCKER_HUB;
  if (rest === '/') rest = '';
  return host + rest;
}

interface Entry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

function readAuthFile(file: string): Map<string, Entry> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    log().warn(`ignoring credentials file ${file}: it is not valid JSON`);
    return undefined;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    log().warn(`ignoring credentials file ${file}: not a JSON object`);
    return undefined;
  }
  const top = doc as Record<string, unknown>;
  const legacy = path.basename(file) === '.dockercfg' && !('auths' in top);
  const auths = legacy ? top : top.auths;
  const out = new Map<string, Entry>();
  if (auths && typeof auths === 'object' && !Array.isArray(auths)) {
    for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
      if (value && typeof value === 'object') out.set(normalizeAuthKey(key), value as Entry);
    }
  }
  if (!legacy) {
    for (const field of ['credHelpers', 'credsStore'] as const) {
      if (top[field]) log().debug(`${file}: ${field} is set; tspod does not run credential helpers`);
    }
  }
  return out;
}

/** Keys to try for a repository, most specific first: `host/a/b`, `host/a`, `host`. */
function candidateKeys(registry: string, repository?: string): string[] {
  const host = normalizeAuthKey(registry);
  const keys: string[] = [];
  if (repository) {
    const parts = repository.split('/');
    for (let n = parts.length; n > 0; n--) keys.push(`${host}/${parts.slice(0, n).join('/')}`);
  }
  keys.push(host);
  return keys;
}

function decodeEntry(entry: Entry, file: string, key: string): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) {
      log().warn(`ignoring the entry for ${key} in ${file}: its "auth" is not base64 of user:password`);
      return undefined;
    }
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1).replace(/\n$/, ''), source: file };
  }
  if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password, source: file };
  }
  if (entry.identitytoken) log().debug(`${file}: the entry for ${key} has only an identity token, which tspod does not use`);
  return undefined;
}

/**
 * The credentials for a registry (and repository, for namespaced entries), or
 * undefined when no file has any.
 */
export function findCredentials(registry: string, repository?: string, opts: { files?: string[]; env?: NodeJS.ProcessEnv } = {}): Credentials | undefined {
  const files = opts.files ?? authFilePaths(opts.env);
  const keys = candidateKeys(registry, repository);
  for (const file of files) {
    const entries = readAuthFile(file);
    if (!entries) continue;
    for (const key of keys) {
      const entry = entries.get(key);
      if (!entry) continue;
      const creds = decodeEntry(entry, file, key);
      if (creds) {
        log().debug(`using credentials for ${key} (user ${creds.username}) from ${file}`);
        return creds;
      }
    }
  }
  return undefined;
}

/** The value of an `Authorization: Basic …` header. */
export function basicAuthorization(c: Pick<Credentials, 'username' | 'password'>): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}
