// docker:// images: a client for the OCI distribution API (v2), as Docker registries,
// distribution's `registry`, quay, ghcr and others serve it.
//
// - Scheme: https. With --insecure-options=http, a registry that cannot be reached
//   over https (refused, TLS failure, bad certificate) is tried again over plain http,
//   as podman does for registries marked insecure. With --insecure-options=tls any
//   certificate is accepted. localhost and 127.0.0.1 get no special treatment: a
//   plain-http registry on 127.0.0.1 needs --insecure-options=http too.
// - Auth: GET /v2/ first; a 401 carries the challenge. Bearer → a token from the
//   realm (service, scope=repository:<repo>:pull), with basic credentials when the
//   auth files have some (store/sources/auth.ts), anonymously otherwise; `token` or
//   `access_token` in the answer. Basic → the credentials from the auth files. The
//   token is kept for the blob requests and fetched again when it expires or a 401
//   comes back. Without usable credentials a 401 is ErrorCode.Auth, saying how to log in.
// - Manifests: Accept lists OCI index and manifest and Docker list and manifest, up
//   to MAX_MANIFEST_BYTES (store/digest.ts). The bytes are checked against the
//   digest when the reference is by digest, and against Docker-Content-Digest when
//   the registry sends it. An index or
//   manifest list is resolved to the host's platform (store/manifest/platform.ts);
//   the chosen manifest is checked against the index entry's digest and size, and the
//   index bytes are kept in the candidate.
// - Blobs: openBlob returns the response body as it comes; the importer checks the
//   digest and size.
// - Redirects (registries send blobs to object storage), TLS and timeouts: tspod's
//   one HTTP policy, store/sources/http.ts; Authorization goes only to the
//   registry's own origin (the token realm's basic credentials only to the realm's).
// - Errors: unreachable → ErrorCode.Network with host:port; 404 → ErrorCode.NotFound;
//   5xx, 429 and other unexpected answers → ErrorCode.Network with the registry's
//   own error text when it sends one.
import type { Readable } from 'node:stream';
import type { Response } from 'node-fetch';
import { TspodError, ErrorCode, isTspodError } from '../../native/errors.js';
import { log } from '../../native/log.js';
import { hashBytes, MAX_MANIFEST_BYTES, parseDigest, type BlobRef } from '../digest.js';
import type { InsecureOptions } from '../insecure.js';
import { MANIFEST_ACCEPT, parseManifestDocument, parseManifestBytes } from '../manifest/oci.js';
import { formatPlatform, hostPlatform, selectPlatformManifest, type Platform } from '../manifest/platform.js';
import { basicAuthorization, findCredentials, type Credentials } from './auth.js';
import { parseDockerReference, type DockerReference } from './reference.js';
import type { OciCandidate } from './source.js';
import { HttpClient, hostPort, readLimited, type HttpAnswer } from './http.js';

export interface RegistryOptions {
  insecure: InsecureOptions;
  /** The platform to resolve indexes for; the host's by default. */
  platform?: Platform;
  /** Names to record for the image; `[ref.name]` by default (`host/repo:tag` or `host/repo@digest`). */
  names?: string[];
  /** Credentials to use instead of the auth files; null for anonymous only. */
  credentials?: Credentials | null;
  /** Auth files to search instead of the default list (see auth.ts). */
  authFiles?: string[];
  /** Time to wait for response headers, in ms (30 000). */
  timeoutMs?: number;
  /** Time a blob body may stay silent, in ms (60 000). */
  idleTimeoutMs?: number;
}

const USER_AGENT = 'tspod/0.1 (OCI distribution client)';
const MAX_INDEX_DEPTH = 2;
/** A registry error body (JSON) is read up to this size for the message. */
const MAX_ERROR_BODY = 64 << 10;

/** Resolves `docker://…` to the platform-specific image manifest, ready for the importer. */
export async function resolveRegistryImage(reference: string, opts: RegistryOptions): Promise<OciCandidate> {
  const ref = parseDockerReference(reference);
  const client = new RegistryClient(ref, opts);
  try {
    return await client.resolve();
  } catch (e) {
    await client.close();
    throw e;
  }
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (one or more challenges, quoted strings with escapes). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const word = token();
    if (!word) {
      i++;
      continue;
    }
    skipWs();
    if (header[i] === '=' && current) {
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i++];
        }
        i++;
      } else {
        const vs = i;
        while (i < n && header[i] !== ',') i++;
        value = header.slice(vs, i).trim();
      }
      current.params[word.toLowerCase()] = value;
    } else {
      // a new challenge (an auth scheme); token68 forms are ignored
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

interface FetchedManifest {
  bytes: Buffer;
  contentType?: string;
  dockerDigest?: string;
}

class RegistryClient {
  private readonly ref: DockerReference;
  private readonly opts: RegistryOptions;
  private readonly http: HttpClient;
  /** `https://host:port` or `http://host:port`, once known. */
  private base?: string;
  private challenge?: Challenge;
  private authorization?: { header: string; expires: number };
  private credentials?: Credentials | null;
  private credentialsLoaded = false;
  private closed = false;

  constructor(ref: DockerReference, opts: RegistryOptions) {
    this.ref = ref;
    this.opts = opts;
    this.http = new HttpClient({
      insecure: opts.insecure,
      keepAlive: true,
      timeoutMs: opts.timeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      failure: (url) => (hostPort(url) === this.hostPort() ? `cannot reach registry ${this.hostPort()}` : `cannot reach ${hostPort(url)}`),
    });
    if (opts.credentials !== undefined) {
      this.credentials = opts.credentials;
      this.credentialsLoaded = true;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.http.close();
  }

  /** host:port of the registry API, with the default port spelled out. */
  private hostPort(url?: string): string {
    return hostPort(url ?? this.base ?? `https://${this.ref.endpoint}`);
  }

  private what(): string {
    return `image ${JSON.stringify(this.ref.name)}`;
  }

  private creds(): Credentials | undefined {
    if (!this.credentialsLoaded) {
      this.credentials = findCredentials(this.ref.registry, this.ref.repository, { files: this.opts.authFiles });
      this.credentialsLoaded = true;
    }
    return this.credentials ?? undefined;
  }

  // ------------------------------------------------------------ resolving

  async resolve(): Promise<OciCandidate> {
    const ref = this.ref;
    const source = ref.url;
    const top = await this.getManifest(ref.reference);
    const topDigest = this.checkManifestDigest(top, ref.digest, `manifest of ${source}`);
    let doc = parseManifestDocument(top.bytes, top.contentType, `manifest of ${source}`);
    let current: { ref: BlobRef; bytes: Buffer } = { ref: { mediaType: doc.mediaType, digest: topDigest, size: top.bytes.length }, bytes: top.bytes };
    let index: { ref: BlobRef; bytes: Buffer } | undefined;

    for (let depth = 0; doc.kind === 'index'; depth++) {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new TspodError(ErrorCode.Unsupported, `${source}: image indexes nested more than ${MAX_INDEX_DEPTH} deep`);
      }
      index ??= current;
      const platform = this.opts.platform ?? hostPlatform();
      const entry = selectPlatformManifest(doc.index, { platform, what: source });
      const label = entry.platform ? formatPlatform(entry.platform) : 'the only image';
      log().debug(`${source}: using ${entry.digest} (${label}) from the ${doc.mediaType}`);
      const fetched = await this.getManifest(entry.digest, `manifest ${entry.digest} (${label}) of ${this.what()}`);
      const what = `manifest ${entry.digest} (${label}) of ${source}`;
      this.checkManifestDigest(fetched, entry.digest, what);
      if (fetched.bytes.length !== entry.size) {
        throw new TspodError(ErrorCode.DigestMismatch, `${what}: got ${fetched.bytes.length} bytes, the index says ${entry.size}`);
      }
      // The entry's media type is what the document must be (its own mediaType field
      // must agree); the Content-Type the registry sends for it adds nothing.
      doc = parseManifestDocument(fetched.bytes, entry.mediaType, what);
      current = { ref: { mediaType: doc.mediaType, digest: entry.digest, size: entry.size }, bytes: fetched.bytes };
    }

    // Import-level checks now, so that a bad image fails before anything is downloaded.
    parseManifestBytes(current.bytes, current.ref.mediaType, `manifest of ${source}`);
    const names = this.opts.names ?? [ref.name];
    const candidate: OciCandidate = {
      kind: 'oci',
      source,
      names,
      manifest: current,
      index,
      openBlob: (blob, signal) => this.openBlob(blob, signal),
      close: () => this.close(),
    };
    return candidate;
  }

  /** Verifies manifest bytes against a pinned digest and Docker-Content-Digest; returns their digest. */
  private checkManifestDigest(m: FetchedManifest, pinned: string | undefined, what: string): string {
    const algorithm = pinned ? parseDigest(pinned).algorithm : 'sha256';
    const actual = `${algorithm}:${hashBytes(algorithm, m.bytes).hex}`;
    if (pinned && actual !== pinned) {
      throw new TspodError(ErrorCode.DigestMismatch, `${what}: content has digest ${actual}, expected ${pinned}`, {
        hint: 'the registry served different bytes than the digest names (tampered or broken)',
      });
    }
    if (m.dockerDigest) {
      let header: ReturnType<typeof parseDigest> | undefined;
      try {
        header = parseDigest(m.dockerDigest.trim());
      } catch {
        log().debug(`${what}: ignoring unusable Docker-Content-Digest ${JSON.stringify(m.dockerDigest)}`);
      }
      if (header) {
        const computed = hashBytes(header.algorithm, m.bytes).hex;
        if (computed !== header.hex) {
          throw new TspodError(
            ErrorCode.DigestMismatch,
            `${what}: the registry says its digest is ${header.algorithm}:${header.hex}, but the content has ${header.algorithm}:${computed}`,
            { hint: 'the manifest was altered on the way or the registry is broken' },
          );
        }
      }
    }
    return actual;
  }

  // ------------------------------------------------------------ manifests

  private async getManifest(reference: string, what?: string): Promise<FetchedManifest> {
    const path = `/v2/${this.ref.repository}/manifests/${reference}`;
    const { res, done } = await this.request(path, { accept: MANIFEST_ACCEPT });
    try {
      if (res.status === 404) {
        const detail = await errorDetail(res);
        throw new TspodError(ErrorCode.NotFound, `${what ?? this.what()} not found in registry ${this.ref.registry}`, detail ? { hint: detail } : undefined);
      }
      if (res.status !== 200) throw await this.statusError(res, `GET ${path}`);
      const length = Number(res.headers.get('content-length') ?? '-1');
      if (length > MAX_MANIFEST_BYTES) {
        throw new TspodError(ErrorCode.BadFormat, `${what ?? `manifest of ${this.what()}`} is ${length} bytes; refusing manifests over ${MAX_MANIFEST_BYTES}`);
      }
      const bytes = await readLimited(res, MAX_MANIFEST_BYTES, what ?? `manifest of ${this.what()}`, `cannot reach registry ${this.hostPort()}`);
      return {
        bytes,
        contentType: res.headers.get('content-type') ?? undefined,
        dockerDigest: res.headers.get('docker-content-digest') ?? undefined,
      };
    } finally {
      done();
    }
  }

  // ------------------------------------------------------------ blobs

  async openBlob(blob: BlobRef, signal?: AbortSignal): Promise<Readable> {
    if (this.closed) throw new TspodError(ErrorCode.System, `registry connection for ${this.ref.url} is already closed`);
    parseDigest(blob.digest);
    const path = `/v2/${this.ref.repository}/blobs/${blob.digest}`;
    const answer = await this.request(path, { signal });
    const { res, done } = answer;
    if (res.status !== 200) {
      try {
        if (res.status === 404) {
          const detail = await errorDetail(res);
          throw new TspodError(ErrorCode.NotFound, `blob ${blob.digest} of ${this.what()} not found in registry ${this.ref.registry}`, detail ? { hint: detail } : undefined);
        }
        throw await this.statusError(res, `GET ${path}`);
      } finally {
        done();
      }
    }
    return this.http.stream(answer, blob.digest, signal);
  }

  // ------------------------------------------------------------ requests, scheme, auth

  /**
   * A GET to the registry with auth and redirects handled. `done` must be called once
   * the body has been read (it clears the header/body timeout).
   */
  private async request(path: string, o: { accept?: string; signal?: AbortSignal }): Promise<HttpAnswer> {
    await this.ensureBase();
    let retried = false;
    for (;;) {
      await this.ensureAuthorization();
      const r = await this.send(`${this.base}${path}`, o);
      if (r.res.status !== 401 || retried) {
        if (r.res.status === 401 || r.res.status === 403) {
          r.done();
          throw this.authError(r.res.status, await errorDetail(r.res));
        }
        return r;
      }
      // 401: a new challenge (maybe a different scope), or the token expired.
      retried = true;
      const challenge = pickChallenge(r.res.headers.get('www-authenticate'));
      await r.res.arrayBuffer().catch(() => undefined);
      r.done();
      if (!challenge) throw this.authError(401, 'the registry sent no usable WWW-Authenticate challenge');
      this.challenge = challenge;
      this.authorization = undefined;
    }
  }

  /** One GET (redirects, TLS and timeouts: store/sources/http.ts), with the registry's Authorization. */
  private send(url: string, o: { accept?: string; signal?: AbortSignal }): Promise<HttpAnswer> {
    return this.http.get(url, { ...o, headers: { 'User-Agent': USER_AGENT }, authorization: this.authorization?.header });
  }

  /** Finds the scheme (https, or http when allowed and https fails) and the auth challenge. */
  private async ensureBase(): Promise<void> {
    if (this.base) return;
    const https = `https://${this.ref.endpoint}`;
    let res: HttpAnswer;
    try {
      res = await this.send(`${https}/v2/`, {});
      this.base = https;
    } catch (e) {
      if (!this.opts.insecure.http || !isTspodError(e) || e.code !== ErrorCode.Network) throw e;
      const plain = `http://${this.ref.endpoint}`;
      log().debug(`https to ${this.ref.endpoint} failed (${e.line}); trying plain http`);
      try {
        res = await this.send(`${plain}/v2/`, {});
        this.base = plain;
      } catch (e2) {
        const line = isTspodError(e2) ? e2.line : String(e2);
        throw new TspodError(ErrorCode.Network, `cannot reach registry ${this.ref.endpoint} over https or http`, {
          hint: `https: ${e.message}; http: ${line}`,
          cause: e2,
        });
      }
    }
    const { res: ping, done } = res;
    try {
      if (ping.status === 401) {
        this.challenge = pickChallenge(ping.headers.get('www-authenticate'));
        if (!this.challenge) throw this.authError(401, 'the registry sent no usable WWW-Authenticate challenge');
      } else if (ping.status === 404) {
        throw new TspodError(ErrorCode.Network, `${this.hostPort()} does not serve the registry API v2 (GET /v2/ answered 404)`, {
          hint: 'check the registry host and port',
        });
      } else if (ping.status >= 500 || (ping.status !== 200 && ping.status !== 403)) {
        throw await this.statusError(ping, 'GET /v2/');
      }
      await ping.arrayBuffer().catch(() => undefined);
    } finally {
      done();
    }
  }

  private async ensureAuthorization(): Promise<void> {
    const ch = this.challenge;
    if (!ch) return;
    if (this.authorization && this.authorization.expires > Date.now()) return;
    this.authorization = undefined;
    if (ch.scheme === 'basic') {
      // Without credentials, go on without: some registries challenge /v2/ but serve
      // public repositories; a 401 on the request itself then says to log in.
      const c = this.creds();
      if (c) this.authorization = { header: basicAuthorization(c), expires: Number.POSITIVE_INFINITY };
      return;
    }
    if (ch.scheme === 'bearer') {
      this.authorization = await this.fetchToken(ch);
      return;
    }
    throw new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} asks for ${ch.scheme} authentication, which tspod does not support`);
  }

  private async fetchToken(ch: Challenge): Promise<{ header: string; expires: number }> {
    const realm = ch.params.realm;
    if (!realm) throw new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} asked for a bearer token without saying where to get it (no realm)`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} named an invalid token realm ${JSON.stringify(realm)}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} named a token realm with an unsupported scheme (${url.protocol})`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const scopes = new Set<string>([`repository:${this.ref.repository}:pull`]);
    for (const s of (ch.params.scope ?? '').split(' ').filter(Boolean)) scopes.add(s);
    for (const s of scopes) url.searchParams.append('scope', s);

    const c = this.creds();
    // A plain-http realm is followed (as docker and podman do), but credentials go
    // over plain http only to a loopback address or with --insecure-options=http.
    if (c && url.protocol === 'http:' && !this.opts.insecure.http && !isLoopback(url.hostname)) {
      throw new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} wants the credentials of user ${JSON.stringify(c.username)} sent over plain http to ${url.host}`, {
        remedy: 'allow-plain-http',
      });
    }
    log().debug(`token request to ${url.origin}${url.pathname} (${c ? `as ${c.username}` : 'anonymous'})`);
    const { res, done } = await this.http.get(url.href, {
      headers: { 'User-Agent': USER_AGENT, Accept: 'application/json' },
      authorization: c ? basicAuthorization(c) : undefined,
    });
    try {
      if (res.status === 401 || res.status === 403) {
        if (c) throw this.badCredentials(c);
        throw this.loginError('requires a login');
      }
      if (res.status !== 200) throw await this.statusError(res, `token request to ${url.host}`);
      const body = (await readLimited(res, MAX_ERROR_BODY, 'token response', this.http.failure(url.href))).toString('utf8');
      let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        throw new TspodError(ErrorCode.Auth, `token server ${url.host} answered with something that is not JSON`);
      }
      const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
      if (!token) throw new TspodError(ErrorCode.Auth, `token server ${url.host} answered without a token`);
      const ttl = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
      // Renew a little early so a long download does not start with a dying token.
      return { header: `Bearer ${token}`, expires: Date.now() + Math.max(ttl - 10, ttl / 2) * 1000 };
    } finally {
      done();
    }
  }

  // ------------------------------------------------------------ errors

  private loginError(why: string): TspodError {
    return new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} ${why} to pull ${this.ref.repoName}`, {
      hint: `log in with \`podman login ${this.ref.registry}\` or \`docker login ${this.ref.registry}\` (tspod reads their credential files)`,
    });
  }

  private badCredentials(c: Credentials): TspodError {
    return new TspodError(ErrorCode.Auth, `registry ${this.ref.registry} refused the credentials of user ${JSON.stringify(c.username)} (from ${c.source})`, {
      hint: `log in again with \`podman login ${this.ref.registry}\``,
    });
  }

  private authError(status: number, detail?: string): TspodError {
    const c = this.creds();
    if (!c) {
      const e = this.loginError(status === 403 ? 'denies anonymous access' : 'requires a login');
      return detail ? new TspodError(ErrorCode.Auth, `${e.message} (${detail})`, { hint: e.hint, remedy: e.remedy }) : e;
    }
    return new TspodError(
      ErrorCode.Auth,
      `registry ${this.ref.registry} denied user ${JSON.stringify(c.username)} (from ${c.source}) access to ${this.ref.repoName}${detail ? ` (${detail})` : ''}`,
      { hint: 'check the repository name and that this user may pull it' },
    );
  }

  private async statusError(res: Response, what: string): Promise<TspodError> {
    const detail = await errorDetail(res);
    const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    const hint = res.status === 429 ? 'the registry is rate-limiting; try again later' : undefined;
    return new TspodError(ErrorCode.Network, `registry ${this.hostPort(res.url || undefined)} answered ${status} to ${what}${detail ? `: ${detail}` : ''}`, hint ? { hint } : undefined);
  }
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function pickChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const all = parseWwwAuthenticate(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic') ?? all[0];
}

/** The registry's own words from an error body (`{"errors":[{"code","message"}]}`), if any. */
async function errorDetail(res: Response): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readLimited(res, MAX_ERROR_BODY, 'error body', '')).toString('utf8');
  } catch {
    return undefined;
  }
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const parts = (doc.errors ?? [])
      .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x).join(': '))
      .filter(Boolean);
    if (parts.length) return parts.join('; ');
  } catch {
    /* not JSON */
  }
  const line = text.trim().split('\n')[0];
  return line && line.length <= 200 && !/^</.test(line) ? line : undefined;
}
