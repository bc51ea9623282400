// `tspod fetch IMAGE...`: store each image and print its ID (rkt's format).
import type { Argv, CommandModule } from 'yargs';
import { withStore } from '../store/store.js';
import { fetchImage } from '../store/fetch.js';
import { insecureFrom, pullPolicyFromFlags, type GlobalArgs } from './global.js';
import { shortId } from './output.js';
import { terminalProgress } from './progress.js';

type FetchArgs = GlobalArgs & { images: string[]; full: boolean; 'pull-policy'?: string; store: boolean; 'store-only': boolean };

export function fetchCommand(_setExit: (code: number) => void): CommandModule {
  const cmd: CommandModule<GlobalArgs, FetchArgs> = {
    command: 'fetch <images..>',
    describe: 'fetch images into the store and print their IDs',
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        full: { type: 'boolean', default: false, describe: 'print the whole image ID' },
        'pull-policy': {
          type: 'string',
          describe: 'new: use the store if the image is there; update (the default): always check the source; never: the store only',
        },
        // --no-store: yargs reads --no-X as X=false, so the option is `store`.
        store: { type: 'boolean', default: true, describe: "--no-store: rkt's older name for --pull-policy=update" },
        'store-only': { type: 'boolean', default: false, describe: "rkt's older name for --pull-policy=never" },
      }) as unknown as Argv<FetchArgs>,
    handler: async (a) => {
      const pullPolicy = pullPolicyFromFlags({ pullPolicy: a['pull-policy'], noStore: a.store === false, storeOnly: a['store-only'] }, 'update');
      const insecure = insecureFrom(a);
      await withStore(a.dir, async (store) => {
        for (const image of a.images) {
          const { id } = await fetchImage(store, image, { pullPolicy, insecure, progress: terminalProgress() });
          process.stdout.write(`${a.full ? id : shortId(id, 32)}\n`);
        }
      });
    },
  };
  return cmd as unknown as CommandModule;
}
