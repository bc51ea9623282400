// Logging goes through pino to stderr. By default each record is printed as one
// plain line ("tspod: message"), which is what a person reading a terminal wants;
// TSPOD_LOG_FORMAT=json keeps pino's JSON lines for machines.
import { pino, type Logger } from 'pino';

let root: Logger | undefined;
let debugEnabled = false;

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

export function configureLogging(opts: { debug: boolean }): void {
  debugEnabled = opts.debug;
  const level = opts.debug ? 'debug' : 'info';
  if (process.env.TSPOD_LOG_FORMAT === 'json') {
    root = pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
  } else {
    root = pino({ level, base: undefined, timestamp: false }, plainDestination());
  }
}

export function log(): Logger {
  if (!root) configureLogging({ debug: process.env.TSPOD_DEBUG === '1' });
  return root!;
}
