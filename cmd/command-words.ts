// Every command word of tspod (the yargs commands and main.ts's own), in a
// module of its own so that main.ts knows them without loading yargs; a unit
// test (test/unit/cli.test.ts) checks it against the commands cli.ts declares.

/** Every top-level command word: a flag before one of these belongs to it. */
export const COMMAND_WORDS: ReadonlySet<string> = new Set([
  'run', 'prepare', 'run-prepared', 'enter', 'fetch', 'image', 'list', 'status', 'stop', 'rm', 'gc', 'cat-manifest', 'export', 'version', 'metadata-service',
  'stats', 'pause', 'resume',
]);
