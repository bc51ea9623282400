// The one error type of tspod. Every failure a user can cause is a TspodError
// with a stable code; cmd/exit.ts maps codes to exit statuses in one place.
//
// native/ is the bottom layer (cmd → stage0 → store → native, and stage1 → native),
// so this module is the only place every part of tspod can import from.

export const ErrorCode = {
  /** Malformed command line: wrong flag values, missing arguments. */
  Usage: 'usage',
  /** Input the user gave that tspod cannot accept (bad image reference, bad flag value). */
  BadInput: 'bad-input',
  /** Something named does not exist (image, pod, file). */
  NotFound: 'not-found',
  /** A prefix or name that matches more than one thing. */
  Ambiguous: 'ambiguous',
  /** Content whose digest or size does not match what was promised. */
  DigestMismatch: 'digest-mismatch',
  /** A manifest, config or archive that does not follow its format. */
  BadFormat: 'bad-format',
  /** A media type or format version tspod does not handle. */
  Unsupported: 'unsupported',
  /** A remote server could not be reached or answered with an error. */
  Network: 'network',
  /** A registry asked for credentials tspod does not have or that it refused. */
  Auth: 'auth',
  /** A layer tried to write outside its directory. */
  UnsafeLayer: 'unsafe-layer',
  /** An image built for another os/arch. */
  Platform: 'platform',
  /** The operation conflicts with the current state (a running pod, a held lock). */
  Conflict: 'conflict',
  /** Needs root. */
  Permission: 'permission',
  /** A system call or tool failed in a way the user did not cause. */
  System: 'system',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * What the user can do about an error when that is a choice made on the command
 * line. store/ (and every layer below cmd/) says what is wrong in its own terms
 * and names the remedy; cmd/remedies.ts is the one place that words a remedy as
 * the hint naming the flag.
 */
export type Remedy =
  /** Let tspod fetch what is not in the store (the pull policy is never). */
  | 'allow-pull'
  /** Allow plain http where tspod refused it (a redirect to http, credentials over http). */
  | 'allow-plain-http'
  /** The server may speak plain http: a TLS handshake failed. */
  | 'try-plain-http'
  /** Accept a TLS certificate that is not trusted. */
  | 'accept-any-tls'
  /** Replace an output that exists. */
  | 'allow-overwrite'
  /** Use another data directory. */
  | 'choose-data-dir'
  /** An appc image has no original manifest: show its own. */
  | 'show-own-manifest';

export interface TspodErrorOptions {
  hint?: string;
  remedy?: Remedy;
  cause?: unknown;
}

export class TspodError extends Error {
  readonly code: ErrorCode;
  /** Optional second half of the one-line message: what the user can do about it, in tspod's own terms. */
  readonly hint?: string;
  /** What the user can do on the command line (cmd/remedies.ts words it, after the hint: `hint, or remedy`). */
  readonly remedy?: Remedy;

  constructor(code: ErrorCode, message: string, options?: TspodErrorOptions) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'TspodError';
    this.code = code;
    this.hint = options?.hint;
    this.remedy = options?.remedy;
  }

  /**
   * The message and its hint, without the remedy: what layers below cmd/ use in
   * logs and in other errors. The line shown to the user is cmd/remedies.ts's
   * errorLine, which adds the remedy's words.
   */
  get line(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

export function isTspodError(e: unknown): e is TspodError {
  return e instanceof TspodError;
}

/** Errno-carrying errors from Node's fs and from native/libc.ts. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}
