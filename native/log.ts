// Logging goes through pino to stderr. By default each record is printed as one
// plain line ("tspod: message"), which is what a person reading a terminal wants;
// TSPOD_LOG_FORMAT=json keeps pino's JSON lines for machines.
//
// pino is loaded on the first record, not with this module: most commands
// that import it log nothing, and run-prepared (whose start-up is a pod's
// start) would otherwise spend about 15 ms evaluating it. It comes from
// node_modules at run time, as koffi does (the bundle leaves both out).
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type * as Pino from 'pino';

let pinoModule: typeof Pino | undefined;

function loadPino(): typeof Pino {
  pinoModule ??= createRequire(import.meta.url)('pino') as typeof Pino;
  return pinoModule;
}

let root: Logger | undefined;
/** --debug as configureLogging set it; until then (undefined) TSPOD_DEBUG says. */
let debugEnabled: boolean | undefined;

function plainDestination(): { write(line: string): void } {
  return {
    write(line: string) {
      let text = line;
      try {
        const rec = JSON.parse(line) as { msg?: string; level?: number };
        text = rec.msg ?? line;
        if (debugEnabled && rec.level !== undefined && rec.level < 30) text = `debug: ${text}`;
      } catch {
        /* not JSON: print as it is */
      }
      process.stderr.write(`tspod: ${text.replace(/\n$/, '')}\n`);
    },
  };
}

/** Sets the level (debug or info); the logger itself is made by the first log(). */
export function configureLogging(opts: { debug: boolean }): void {
  debugEnabled = opts.debug;
  root = undefined;
}

function makeLogger(): Logger {
  debugEnabled ??= process.env.TSPOD_DEBUG === '1';
  const level = debugEnabled ? 'debug' : 'info';
  const { pino } = loadPino();
  if (process.env.TSPOD_LOG_FORMAT === 'json') return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
  return pino({ level, base: undefined, timestamp: false }, plainDestination());
}

export function log(): Logger {
  root ??= makeLogger();
  return root;
}
