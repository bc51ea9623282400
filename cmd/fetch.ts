import type { CommandModule } from 'yargs';
import { TspodError, ErrorCode } from '../native/errors.js';

export function fetchCommand(_setExit: (code: number) => void): CommandModule {
  return {
    command: 'fetch <images..>',
    describe: 'fetch images into the store and print their IDs',
    handler: async () => {
      throw new TspodError(ErrorCode.Unsupported, 'fetch: not built yet');
    },
  };
}
