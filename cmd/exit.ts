// Exit codes, set in this one place (docs/architecture.md, "Errors and exit codes"):
// 254 for tspod's own failures, 2 for usage errors, and an app's own code
// passed through by run (stage1 exits with it; stage0 execs stage1).
import { ErrorCode, isTspodError, type TspodError } from '../native/errors.js';

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 254;

export function exitCodeFor(err: TspodError): number {
  return err.code === ErrorCode.Usage ? EXIT_USAGE : EXIT_FAILURE;
}

/** Prints the one line for err on stderr (a stack too with --debug) and returns the exit code to use. */
export function reportError(err: unknown, debug = process.argv.includes('--debug')): number {
  if (isTspodError(err)) {
    process.stderr.write(`tspod: ${err.line}\n`);
    if (debug && err.cause) process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
    return exitCodeFor(err);
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && e.code && e.message) {
    process.stderr.write(`tspod: ${e.message}\n`);
  } else {
    process.stderr.write(`tspod: internal error: ${String((err as Error)?.message ?? err)}\n`);
  }
  if (debug) process.stderr.write(`${String((err as Error)?.stack ?? '')}\n`);
  return EXIT_FAILURE;
}
