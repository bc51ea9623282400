// The commands that need root say so before they touch anything.
import { TspodError, ErrorCode } from '../native/errors.js';

/** Throws a Permission error naming `what` unless this process runs as root. */
export function requireRoot(what: string): void {
  if (process.getuid && process.getuid() !== 0) {
    throw new TspodError(ErrorCode.Permission, `${what}: cannot run as unprivileged user`, { hint: 'run it as root' });
  }
}
