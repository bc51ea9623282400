// `tspod fetch IMAGE...`: store each image and print its ID (rkt's format).
import { withStore } from '../store/store.js';
import { fetchImage } from '../store/fetch.js';
import { command } from './command.js';
import { insecureFrom, pullPolicyFromFlags } from './global.js';
import { FULL_FLAG, shortId } from './output.js';
import { terminalProgress } from './progress.js';

export const fetchCommand = command({
  name: 'fetch',
  describe: 'fetch images into the store and print their IDs',
  positionals: { images: { kind: 'list', required: true } },
  flags: {
    full: { ...FULL_FLAG, describe: 'print the whole image ID' },
    'pull-policy': { kind: 'value', describe: 'new: use the store if the image is there; update (the default): always check the source; never: the store only' },
    // --no-store: yargs reads --no-X as X=false, so the flag is `store`.
    store: { kind: 'bool', default: true, describe: "--no-store: rkt's older name for --pull-policy=update" },
    'store-only': { kind: 'bool', default: false, describe: "rkt's older name for --pull-policy=never" },
  },
  run: async (a, g) => {
    const pullPolicy = pullPolicyFromFlags({ pullPolicy: a['pull-policy'], noStore: !a.store, storeOnly: a['store-only'] }, 'update');
    const insecure = insecureFrom(g);
    await withStore(g.dir, async (store) => {
      for (const image of a.images) {
        const { id } = await fetchImage(store, image, { pullPolicy, insecure, progress: terminalProgress() });
        process.stdout.write(`${a.full ? id : shortId(id, 32)}\n`);
      }
    });
  },
});
