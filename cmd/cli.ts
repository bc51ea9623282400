// The tspod command line. Commands are thin: they parse flags, call stage0 or
// store, and print. Errors end in cmd/exit.ts.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { configureLogging } from '../native/log.js';
import { TspodError, ErrorCode } from '../native/errors.js';
import { reportError } from './exit.js';
import { globalOptions } from './global.js';
import { fetchCommand } from './fetch.js';
import { imageCommand } from './image.js';
import { TSPOD_VERSION } from './version.js';
import { podCommands, prepareOrRun } from './pods.js';
import { DEFAULT_DIR } from '../store/paths.js';
import type { GlobalArgs } from './global.js';

/** Finds the command word after any global flags. */
function splitCommand(argv: string[]): { globals: GlobalArgs; command?: string; rest: string[] } {
  const globals: GlobalArgs = { dir: DEFAULT_DIR, debug: false, 'insecure-options': 'none' };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    const m = /^--(dir|debug|insecure-options)(?:=(.*))?$/.exec(tok);
    if (!m) return tok.startsWith('-') ? { globals, rest: argv } : { globals, command: tok, rest: argv.slice(i + 1) };
    if (m[1] === 'debug') globals.debug = m[2] === undefined ? true : m[2] === 'true';
    else globals[m[1] as 'dir' | 'insecure-options'] = m[2] ?? argv[++i] ?? '';
  }
  return { globals, rest: argv };
}

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const split = splitCommand(argv);
  if (split.command === 'run' || split.command === 'prepare') return prepareOrRun(split.command, split.rest, split.globals);
  const parser = yargs(argv)
    .scriptName('tspod')
    .usage('tspod: a daemonless pod runner with a content-addressed image store\n\nUsage: $0 <command> [flags]')
    .options(globalOptions)
    .middleware((a) => configureLogging({ debug: Boolean(a.debug) }))
    .command(fetchCommand((c) => (exitCode = c)))
    .command(imageCommand((c) => (exitCode = c)))
    .command(podCommands((c) => (exitCode = c)))
    .command('prepare', 'prepare a pod: prints its UUID (see tspod prepare --help)', {}, () => {})
    .command('run', 'prepare and run a pod (see tspod run --help)', {}, () => {})
    .command('version', 'print the version', {}, () => {
      process.stdout.write(`tspod Version: ${TSPOD_VERSION}\nappc Version: 0.8.11\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
    })
    .demandCommand(1, 'specify a command (see tspod --help)')
    .strict()
    .recommendCommands()
    .parserConfiguration({ 'halt-at-non-option': false })
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new TspodError(ErrorCode.Usage, msg, { hint: 'see tspod --help' });
    });
  await parser.parseAsync();
  return exitCode;
}


let settled = false;
// A command whose work stalls with nothing left to wait for must not exit 0 silently.
process.on('beforeExit', () => {
  if (!settled) {
    process.stderr.write('tspod: internal error: the command stopped before finishing (run with --debug and report it)\n');
    process.exit(254);
  }
});

main(hideBin(process.argv)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err) => {
    settled = true;
    process.exitCode = reportError(err);
  },
);
