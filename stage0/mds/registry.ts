// The metadata service's pods, in memory only (as rkt's): a restart of the
// service forgets them, and pods registered before must be run again.
import { createHash, randomBytes } from 'node:crypto';
import type { MdsPodRecord } from './protocol.js';

export interface RegisteredPod extends MdsPodRecord {
  uuid: string;
}

/** A token is 256 random bits, base64url: unguessable, and unrelated to the UUID. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Tokens are looked up by their SHA-256, so that no lookup compares the secret itself byte by byte. */
function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class PodRegistry {
  private readonly byKey = new Map<string, RegisteredPod>();
  private readonly keyByUuid = new Map<string, string>();

  /** Registers (or registers again, with a new token) a pod; returns its token. */
  add(uuid: string, record: MdsPodRecord): string {
    this.remove(uuid);
    const token = newToken();
    const key = tokenKey(token);
    this.byKey.set(key, { uuid, ...record });
    this.keyByUuid.set(uuid, key);
    return token;
  }

  remove(uuid: string): boolean {
    const key = this.keyByUuid.get(uuid);
    if (key === undefined) return false;
    this.keyByUuid.delete(uuid);
    this.byKey.delete(key);
    return true;
  }

  /** The pod a token belongs to, or undefined. */
  byToken(token: string): RegisteredPod | undefined {
    if (token.length < 22 || token.length > 128) return undefined;
    return this.byKey.get(tokenKey(token));
  }

  get size(): number {
    return this.byKey.size;
  }
}
