// Errors become exit codes here and nowhere else (docs/architecture.md, "Errors
// and exit codes"): 254 for tspod's own failures and bad input, 2 for a command
// line tspod cannot parse (an unknown flag or command, a missing argument), and
// an app's own code passed through by run (stage1 exits with it; stage0 execs stage1).
import { ErrorCode, isTspodError, type TspodError } from '../native/errors.js';
import { errorLine } from './remedies.js';

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 254;

export function exitCodeFor(err: TspodError): number {
  return err.code === ErrorCode.Usage ? EXIT_USAGE : EXIT_FAILURE;
}

/**
 * A command that goes on past failed items (rkt's stop, rm, image rm, image
 * verify) ends with this once every item is done: each failure has been printed
 * already (eachItem), so it adds no line of its own.
 */
export class ItemsFailed extends Error {
  constructor(readonly count: number) {
    super(`${count} item(s) failed`);
  }
}

/**
 * Runs fn for each item in turn, going on past failures; a failure (thrown, or
 * passed to `fail` for one that does not stop the item) is printed at once as
 * one line. Returns how many failed.
 */
export async function eachItem<T>(items: Iterable<T>, debug: boolean, fn: (item: T, fail: (err: unknown) => void) => void | Promise<void>): Promise<number> {
  let failed = 0;
  const fail = (err: unknown) => {
    failed++;
    printError(err, debug);
  };
  for (const item of items) {
    try {
      await fn(item, fail);
    } catch (err) {
      fail(err);
    }
  }
  return failed;
}

/** Ends a command that went on past `failed` failed items (exit 254 if any). */
export function itemsDone(failed: number): void {
  if (failed) throw new ItemsFailed(failed);
}

/** eachItem, then itemsDone. */
export async function forEachItem<T>(items: Iterable<T>, debug: boolean, fn: (item: T, fail: (err: unknown) => void) => void | Promise<void>): Promise<void> {
  itemsDone(await eachItem(items, debug, fn));
}

/** Prints the one line for err on stderr (a stack too with --debug). */
function printError(err: unknown, debug: boolean): void {
  if (isTspodError(err)) {
    process.stderr.write(`tspod: ${errorLine(err)}\n`);
    if (debug && err.cause) process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
    return;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && e.code && e.message) {
    process.stderr.write(`tspod: ${e.message}\n`);
  } else {
    process.stderr.write(`tspod: internal error: ${String((err as Error)?.message ?? err)}\n`);
  }
  if (debug) process.stderr.write(`${String((err as Error)?.stack ?? '')}\n`);
}

/** Prints the line for err (none for ItemsFailed: its items were printed) and returns the exit code to use. */
export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof ItemsFailed) return EXIT_FAILURE;
  printError(err, debug);
  return isTspodError(err) ? exitCodeFor(err) : EXIT_FAILURE;
}
