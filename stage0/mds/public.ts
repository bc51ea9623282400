// The appc metadata service's public endpoints (appc spec/ace.md "App
// Container Metadata Service"), as a pure function of the request, so that the
// HTTP server (service.ts) only moves bytes. URLs are /TOKEN/acMetadata/v1/…:
//   GET  pod/annotations  pod/manifest  pod/uuid
//   GET  apps/NAME/annotations  apps/NAME/image/manifest  apps/NAME/image/id
//   POST pod/hmac/sign (content=)  pod/hmac/verify (content=, uuid=, signature=)
// A request whose token is unknown gets 403 and the same short body whatever it
// asked for: it learns nothing, not even which paths exist.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NameValue } from '../../stage1/contract/appc.js';
import { UUID_RE } from './protocol.js';
import type { PodRegistry, RegisteredPod } from './registry.js';

export interface PublicRequest {
  method: string;
  /** The request target (path and query). */
  url: string;
  contentType?: string;
  /** POST body (already size-checked). */
  body: Buffer;
}

export interface PublicResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=us-ascii';

const text = (status: number, body: string, extra: Record<string, string> = {}): PublicResponse => ({ status, headers: { 'Content-Type': TEXT_TYPE, ...extra }, body });
const json = (value: unknown): PublicResponse => ({ status: 200, headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(value) });

export const FORBIDDEN: PublicResponse = text(403, 'Forbidden\n');

/** HMAC-SHA512 over the pod's UUID (its 16 bytes) and the content, as rkt's. */
export function podHmac(key: Buffer, uuid: string, content: string): Buffer {
  return createHmac('sha512', key).update(Buffer.from(uuid.replace(/-/g, ''), 'hex')).update(content, 'utf8').digest();
}

/** Image annotations, then the pod app's annotations over them (by name). */
export function appAnnotations(pod: RegisteredPod, app: string): NameValue[] {
  const merged = new Map<string, string>();
  for (const a of pod.images[app]?.annotations ?? []) merged.set(a.name, a.value);
  for (const a of pod.manifest.apps.find((x) => x.name === app)?.annotations ?? []) merged.set(a.name, a.value);
  return [...merged].map(([name, value]) => ({ name, value }));
}

function form(req: PublicRequest): URLSearchParams | PublicResponse {
  const type = (req.contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type !== '' && type !== 'application/x-www-form-urlencoded') {
    return text(415, 'send the form as application/x-www-form-urlencoded\n');
  }
  return new URLSearchParams(req.body.toString('utf8'));
}

function sign(pod: RegisteredPod, key: Buffer, req: PublicRequest): PublicResponse {
  const f = form(req);
  if (!(f instanceof URLSearchParams)) return f;
  const content = f.get('content');
  if (content === null || content === '') return text(400, 'content form value not found\n');
  return text(200, podHmac(key, pod.uuid, content).toString('base64'));
}

function verify(key: Buffer, req: PublicRequest): PublicResponse {
  const f = form(req);
  if (!(f instanceof URLSearchParams)) return f;
  const uuid = (f.get('uuid') ?? '').toLowerCase();
  if (!UUID_RE.test(uuid)) return text(400, 'uuid field missing or malformed\n');
  const content = f.get('content');
  if (content === null || content === '') return text(400, 'content field missing\n');
  const sig = f.get('signature') ?? '';
  if (sig === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return text(400, 'signature field missing or not base64\n');
  const want = podHmac(key, uuid, content);
  const got = Buffer.from(sig, 'base64');
  return got.length === want.length && timingSafeEqual(got, want) ? text(200, '') : FORBIDDEN;
}

/** Answers one request to the public endpoints. */
export function publicResponse(registry: PodRegistry, hmacKey: Buffer, req: PublicRequest): PublicResponse {
  const pathname = req.url.split('?')[0];
  const parts = pathname.split('/');
  // ['', TOKEN, 'acMetadata', 'v1', …]
  const pod = parts.length > 1 ? registry.byToken(parts[1]) : undefined;
  if (!pod) return FORBIDDEN;
  if (parts[2] !== 'acMetadata' || parts[3] !== 'v1') return text(404, 'Not Found\n');
  const rest = parts.slice(4);
  if (rest.length > 1 && rest[rest.length - 1] === '') rest.pop(); // a trailing slash
  const route = rest.join('/');
  const only = (method: string, answer: () => PublicResponse): PublicResponse =>
    req.method === method ? answer() : text(405, 'Method Not Allowed\n', { Allow: method });

  switch (route) {
    case 'pod/annotations':
      return only('GET', () => json(pod.manifest.annotations ?? []));
    case 'pod/manifest':
      return only('GET', () => json(pod.manifest));
    case 'pod/uuid':
      return only('GET', () => text(200, pod.uuid));
    case 'pod/hmac/sign':
      return only('POST', () => sign(pod, hmacKey, req));
    case 'pod/hmac/verify':
      return only('POST', () => verify(hmacKey, req));
  }
  if (rest[0] === 'apps' && rest.length >= 3) {
    let app: string;
    try {
      app = decodeURIComponent(rest[1]);
    } catch {
      return text(404, 'Not Found\n');
    }
    const podApp = pod.manifest.apps.find((a) => a.name === app);
    const image = pod.images[app];
    if (!podApp || !image) return text(404, 'app not found\n');
    switch (rest.slice(2).join('/')) {
      case 'annotations':
        return only('GET', () => json(appAnnotations(pod, app)));
      case 'image/manifest':
        return only('GET', () => json(image));
      case 'image/id':
        return only('GET', () => text(200, podApp.image.id));
    }
  }
  return text(404, 'Not Found\n');
}
