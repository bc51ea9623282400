// tspod's one HTTP policy, for the registry client (store/sources/registry.ts)
// and ACI downloads (store/sources/aci.ts):
//
// - TLS: Node's bundled roots plus the user's extra CA file (bin/tspod moves
//   NODE_EXTRA_CA_CERTS aside into TSPOD_EXTRA_CA_CERTS before Node starts, so
//   that Node does not read it at every start; it is added back here); any
//   certificate with --insecure-options=tls.
// - Redirects are followed by hand: at most 10, to http or https only, never from
//   https to plain http without --insecure-options=http, and an Authorization
//   header goes only to the origin it was meant for.
// - Timeouts: 30 s to get a response's headers (a whole small body, for callers
//   that read one at once), and a body streamed with `stream` that sends nothing
//   for 60 s is abandoned (a slow reader does not count).
// - Errors: ErrorCode.Network, one line that starts with the caller's words for
//   the failure ("cannot reach registry host:port", "unable to fetch image from
//   URL") and says why, with advice when there is some.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { PassThrough, type Readable } from 'node:stream';
import fetch, { type RequestInit, type Response } from 'node-fetch';
import { TspodError, ErrorCode, isTspodError, type Remedy } from '../../native/errors.js';
import { log } from '../../native/log.js';
import type { InsecureOptions } from '../insecure.js';

const MAX_REDIRECTS = 10;
const REDIRECTS = [301, 302, 303, 307, 308];

let cachedCerts: string[] | undefined;

/** Node's bundled roots plus the user's extra CA file, or undefined for Node's default. */
function trustedCertificates(): string[] | undefined {
  const extra = process.env.TSPOD_EXTRA_CA_CERTS;
  if (!extra) return undefined;
  if (!cachedCerts) {
    let pem = '';
    try {
      pem = fs.readFileSync(extra, 'utf8');
    } catch {
      /* Node itself only warns about an unreadable file: do the same by ignoring it */
    }
    cachedCerts = [...tls.rootCertificates, ...(pem ? [pem] : [])];
  }
  return cachedCerts;
}

export interface HttpOptions {
  insecure: Pick<InsecureOptions, 'http' | 'tls'>;
  /** Keep connections open between requests (the registry's many small ones). */
  keepAlive?: boolean;
  /** Time to wait for response headers, in ms (30 000). */
  timeoutMs?: number;
  /** Time a streamed body may stay silent, in ms (60 000). */
  idleTimeoutMs?: number;
  /** The start of every error line about `url`: what could not be done, and where. */
  failure: (url: string) => string;
}

export interface HttpGet {
  accept?: string;
  headers?: Record<string, string>;
  /** Sent to the first URL's origin only, never to a redirect target elsewhere. */
  authorization?: string;
  signal?: AbortSignal;
}

export interface HttpAnswer {
  res: Response;
  /** The URL that answered (after redirects). */
  url: string;
  /** Ends the header timeout: call it once the body is read, or handed to `stream`. */
  done: () => void;
}

export class HttpClient {
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly opts: HttpOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    const keepAlive = opts.keepAlive ?? false;
    this.httpAgent = new http.Agent({ keepAlive, maxSockets: 8 });
    this.httpsAgent = new https.Agent({ keepAlive, maxSockets: 8, rejectUnauthorized: !opts.insecure.tls, ca: trustedCertificates() });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** The start of an error line about `url` (HttpOptions.failure). */
  failure(url: string): string {
    return this.opts.failure(url);
  }

  /** One GET, following redirects by hand, with the header timeout running until `done`. */
  async get(url: string, o: HttpGet = {}): Promise<HttpAnswer> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    timer.unref?.();
    const onAbort = () => controller.abort();
    if (o.signal?.aborted) controller.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    const origin = new URL(url).origin;
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        const headers: Record<string, string> = { 'Accept-Encoding': 'identity', ...o.headers };
        if (o.accept) headers.Accept = o.accept;
        if (o.authorization && new URL(current).origin === origin) headers.Authorization = o.authorization;
        log().debug(`GET ${redact(current)}`);
        let res: Response;
        try {
          res = await fetch(current, this.init(headers, controller.signal)).catch((e: unknown) => {
            // A kept-alive connection the server had just closed: try once more on a new one.
            const code = (e as { code?: string }).code;
            if ((code === 'ECONNRESET' || code === 'EPIPE') && !controller.signal.aborted) {
              log().debug(`GET ${redact(current)}: ${code}, retrying once`);
              return fetch(current, this.init(headers, controller.signal));
            }
            throw e;
          });
        } catch (e) {
          if (timedOut) throw new TspodError(ErrorCode.Network, `${this.failure(current)}: no response within ${duration(this.timeoutMs)}`);
          if (o.signal?.aborted) throw new TspodError(ErrorCode.Network, `${this.failure(current)}: cancelled`);
          throw networkError(e, this.failure(current), this.opts.insecure);
        }
        if (!REDIRECTS.includes(res.status)) return { res, url: current, done };
        const location = res.headers.get('location');
        await res.arrayBuffer().catch(() => undefined);
        if (!location) throw new TspodError(ErrorCode.Network, `${this.failure(current)}: it answered ${res.status} without a Location`);
        if (hop >= MAX_REDIRECTS) throw new TspodError(ErrorCode.Network, `${this.failure(url)}: more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, current);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new TspodError(ErrorCode.Network, `${this.failure(current)}: it redirects to an unsupported URL scheme ${next.protocol}`);
        }
        if (next.protocol === 'http:' && new URL(current).protocol === 'https:' && !this.opts.insecure.http) {
          throw new TspodError(ErrorCode.Network, `${this.failure(current)}: refusing to follow its redirect from https to plain http (${redact(next.href)})`, {
            remedy: 'allow-plain-http',
          });
        }
        log().debug(`redirected to ${redact(next.href)}`);
        current = next.href;
      }
    } catch (e) {
      done();
      throw e;
    }
  }

  /**
   * The body of an answer as a stream that fails with one line when the server
   * sends nothing for the idle timeout (unless the reader is the slow one) or
   * `signal` aborts. Ends the header timeout.
   */
  stream(a: HttpAnswer, what: string, signal?: AbortSignal): Readable {
    a.done();
    const body = a.res.body as unknown as Readable;
    const out = new PassThrough();
    const failure = this.failure(a.url);
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => {
        if (out.writableNeedDrain || body.isPaused()) {
          arm(); // the consumer is slow, not the server
          return;
        }
        const err = new TspodError(ErrorCode.Network, `${failure}: the download of ${what} stalled: nothing received for ${duration(this.idleTimeoutMs)}`);
        body.destroy(err);
        out.destroy(err);
      }, this.idleTimeoutMs);
      idle.unref?.();
    };
    arm();
    body.on('data', arm);
    body.on('error', (e) => {
      if (idle) clearTimeout(idle);
      out.destroy(isTspodError(e) ? e : networkError(e, `${failure}: downloading ${what}`));
    });
    body.on('end', () => {
      if (idle) clearTimeout(idle);
    });
    out.on('close', () => {
      if (idle) clearTimeout(idle);
      if (!body.readableEnded) body.destroy();
    });
    const onAbort = () => out.destroy(new TspodError(ErrorCode.Network, `${failure}: the download of ${what} was cancelled`));
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      out.on('close', () => signal.removeEventListener('abort', onAbort));
    }
    body.pipe(out);
    return out;
  }

  private init(headers: Record<string, string>, signal: AbortSignal): RequestInit {
    return {
      method: 'GET',
      headers,
      redirect: 'manual',
      compress: false,
      signal: signal as RequestInit['signal'],
      agent: (u: URL) => (u.protocol === 'http:' ? this.httpAgent : this.httpsAgent),
    };
  }
}

/** Reads a (small) response body, failing when it is larger than `limit`. */
export async function readLimited(res: Response, limit: number, what: string, failure: string): Promise<Buffer> {
  const body = res.body as unknown as Readable | null;
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > limit) {
        body.destroy();
        throw new TspodError(ErrorCode.BadFormat, `${what} is larger than ${limit} bytes; refusing it`);
      }
      chunks.push(b);
    }
  } catch (e) {
    if (isTspodError(e)) throw e;
    throw networkError(e, `${failure}: reading ${what}`);
  }
  return Buffer.concat(chunks);
}

const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/** A connection-level failure → ErrorCode.Network: `prefix: why`, with advice when there is some. */
function networkError(e: unknown, prefix: string, insecure?: Pick<InsecureOptions, 'http' | 'tls'>): TspodError {
  const err = e as { code?: string; errno?: string; message?: string; cause?: { code?: string } };
  const code = err.code ?? err.errno ?? err.cause?.code ?? '';
  let why: string;
  let remedy: Remedy | undefined;
  if ((e as Error)?.name === 'AbortError') why = 'timed out or cancelled';
  else if (code === 'ECONNREFUSED') why = 'connection refused';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') why = 'unknown host';
  else if (code === 'ETIMEDOUT') why = 'connection timed out';
  else if (code === 'ECONNRESET' || code === 'EPIPE') why = 'connection reset';
  else if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') why = 'no route to host';
  else if (CERT_CODES.has(code)) {
    why = `its TLS certificate is not trusted (${code})`;
    if (!insecure?.tls) remedy = 'accept-any-tls';
  } else if (code === 'EPROTO' || code.startsWith('ERR_SSL') || /wrong version number|packet length too long|ssl/i.test(err.message ?? '')) {
    why = 'TLS handshake failed';
    if (!insecure?.http) remedy = 'try-plain-http';
  } else why = (err.message ?? String(e)).replace(/^request to \S+ failed, reason: /, '');
  return new TspodError(ErrorCode.Network, `${prefix}: ${why}`, { remedy, cause: e });
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** host:port of a URL, with the default port spelled out. */
export function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
}

/** A URL for logs and errors, without query strings (storage redirects carry signatures). */
export function redact(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
}
