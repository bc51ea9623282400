// The tspod command line (yargs). Commands are thin: they parse flags, call
// stage0 or store, and print. Errors end in cmd/exit.ts (see main.ts).
import yargs from 'yargs';
import { configureLogging } from '../native/log.js';
import { TspodError, ErrorCode } from '../native/errors.js';
import { globalOptions } from './global.js';
import { fetchCommand } from './fetch.js';
import { imageCommand } from './image.js';
import { TSPOD_VERSION } from './version.js';
import { podCommands } from './pods.js';
import { metadataServiceCommand } from './metadata-service.js';

/** Every command but the fast paths in main.ts, through yargs. */
export async function runCli(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('tspod')
    .usage('tspod: a daemonless pod runner with a content-addressed image store\n\nUsage: $0 <command> [flags]')
    .options(globalOptions)
    .middleware((a) => configureLogging({ debug: Boolean(a.debug) }))
    .command(fetchCommand((c) => (exitCode = c)))
    .command(imageCommand((c) => (exitCode = c)))
    .command(podCommands((c) => (exitCode = c)))
    .command(metadataServiceCommand((c) => (exitCode = c)))
    .command('prepare', 'prepare a pod: prints its UUID (see tspod prepare --help)', {}, () => {})
    .command('run', 'prepare and run a pod (see tspod run --help)', {}, () => {})
    .command('enter', "run a command in a running pod's app (see tspod enter --help)", {}, () => {})
    .command('version', 'print the version', {}, () => {
      process.stdout.write(`tspod Version: ${TSPOD_VERSION}\nappc Version: 0.8.11\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
    })
    .demandCommand(1, 'specify a command')
    .strict()
    .recommendCommands()
    .parserConfiguration({ 'halt-at-non-option': false })
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      const text = /^Not enough non-option arguments/.test(msg) ? 'missing arguments' : msg;
      throw new TspodError(ErrorCode.Usage, text, { hint: 'see tspod --help, or tspod COMMAND --help' });
    });
  await parser.parseAsync();
  return exitCode;
}
