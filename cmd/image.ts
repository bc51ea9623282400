import type { CommandModule } from 'yargs';

export function imageCommand(_setExit: (code: number) => void): CommandModule {
  return {
    command: 'image <command>',
    describe: 'operate on images in the store',
    builder: (y) => y.demandCommand(1),
    handler: () => {},
  };
}
