// Choosing the stage1 image. The default stage1 is built by `make` next to the
// tspod binary (bin/stage1.aci) and imported into the store on first use (again
// whenever that file changes). --stage1-path, --stage1-name
// and --stage1-hash choose another.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TspodError, ErrorCode } from '../native/errors.js';
import { fetchImage } from '../store/fetch.js';
import type { InsecureOptions } from '../store/insecure.js';
import type { Store } from '../store/store.js';
import { checkStage1Manifest } from './stage1-interface.js';

export const DEFAULT_STAGE1_NAME = 'tspod/stage1';

/**
 * stage1.aci in the directory of the `tspod` launcher, i.e. bin/stage1.aci for
 * bin/tspod-js/main.js (TSPOD_STAGE1_ACI overrides, for tests).
 */
export function defaultStage1File(): string {
  if (process.env.TSPOD_STAGE1_ACI) return process.env.TSPOD_STAGE1_ACI;
  const main = fs.realpathSync(process.argv[1] ?? fileURLToPath(import.meta.url));
  return path.join(path.dirname(path.dirname(main)), 'stage1.aci');
}

export interface Stage1Choice {
  path?: string;
  name?: string;
  hash?: string;
}

export async function resolveStage1(store: Store, choice: Stage1Choice, insecure: InsecureOptions): Promise<string> {
  let id: string;
  if (choice.hash) {
    id = store.images.resolve(choice.hash);
  } else if (choice.name) {
    id = store.images.resolve(choice.name);
  } else if (choice.path) {
    id = (await fetchImage(store, choice.path, { pullPolicy: 'update', insecure })).id;
  } else {
    id = await defaultStage1(store, insecure);
  }
  checkStage1Manifest(store.images.get(id).manifest, `image ${id}`);
  return id;
}

/**
 * What the default stage1 was imported from: its file's path, size and mtime, and
 * the image ID it gave. Kept in the data directory so that a prepare does not
 * import (hash and unpack) the 90 MB stage1 again while the file is unchanged;
 * the store keeps an image's first import time when the same image is imported
 * again, so that time cannot tell.
 */
const STAGE1_STAMP = 'stage1-default.json';

interface Stage1Stamp {
  file: string;
  size: number;
  mtimeMs: number;
  id: string;
}

async function defaultStage1(store: Store, insecure: InsecureOptions): Promise<string> {
  const file = path.resolve(defaultStage1File());
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new TspodError(ErrorCode.NotFound, `the default stage1 image ${file} is missing`, {
      hint: 'run make, or choose a stage1 with --stage1-path/--stage1-name',
    });
  }
  const stampFile = path.join(store.paths.dir, STAGE1_STAMP);
  try {
    const s = JSON.parse(fs.readFileSync(stampFile, 'utf8')) as Stage1Stamp;
    if (s.file === file && s.size === st.size && s.mtimeMs === st.mtimeMs && store.images.has(s.id)) return s.id;
  } catch {
    /* no stamp yet, or unreadable: import */
  }
  const id = (await fetchImage(store, file, { pullPolicy: 'update', insecure })).id;
  const stamp: Stage1Stamp = { file, size: st.size, mtimeMs: st.mtimeMs, id };
  const tmp = `${stampFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(stamp));
  fs.renameSync(tmp, stampFile);
  return id;
}
