// The tspod command line through yargs, for every command but the fast paths
// in main.ts. The global flags were taken out and read already (cmd/global.ts);
// they are declared here only for --help. Errors end in cmd/exit.ts (see main.ts).
import yargs from 'yargs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { command, yargsOption, type Command } from './command.js';
import { GLOBAL_FLAGS, type GlobalArgs } from './global.js';
import { fetchCommand } from './fetch.js';
import { imageCommand } from './image.js';
import { TSPOD_VERSION } from './version.js';
import { podCommands } from './pods.js';
import { metadataServiceCommand } from './metadata-service.js';

/** Listed in --help; main.ts runs them without yargs. */
const listedOnly = (name: string, describe: string): Command => command({ name, describe, run: () => undefined });

const versionCommand = command({
  name: 'version',
  describe: 'print the version',
  run: () => {
    process.stdout.write(`tspod Version: ${TSPOD_VERSION}\nappc Version: 0.8.11\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
  },
});

/** Every command yargs knows (with the ones main.ts runs itself, for --help). */
export const CLI_COMMANDS: Command[] = [
  fetchCommand,
  imageCommand,
  ...podCommands,
  metadataServiceCommand,
  listedOnly('prepare', 'prepare a pod: prints its UUID (see tspod prepare --help)'),
  listedOnly('run', 'prepare and run a pod (see tspod run --help)'),
  listedOnly('enter', "run a command in a running pod's app (see tspod enter --help)"),
  versionCommand,
];

/** Runs a command (its name and its own arguments) with the global flags read already; returns its exit code. */
export async function runCli(argv: string[], globals: GlobalArgs): Promise<number> {
  let exitCode = 0;
  const setExit = (code: number) => (exitCode = code);
  const parser = yargs(argv)
    .scriptName('tspod')
    .usage('tspod: a daemonless pod runner with a content-addressed image store\n\nUsage: $0 <command> [flags]')
    .options(Object.fromEntries(Object.entries(GLOBAL_FLAGS).map(([n, f]) => [n, { ...yargsOption(f), global: true }])));
  for (const c of CLI_COMMANDS) parser.command(c({ globals, setExit, argv }));
  parser
    .demandCommand(1, 'specify a command')
    .strict()
    .recommendCommands()
    // UUIDs and image names stay strings (`0123`, `1e5`).
    .parserConfiguration({ 'halt-at-non-option': false, 'parse-positional-numbers': false })
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
