// Where the repository, its fixtures and the tests' scratch space are.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from './cleanup.js';

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    // build/package.json (tsc copies it) also says tspod: the root has the Makefile too.
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'Makefile'))) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tspod') return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('test harness: cannot find the tspod repository root');
    dir = up;
  }
}

/** The repository's top directory (absolute). */
export const REPO_ROOT = findRepoRoot();

/** Every test's scratch space lives under here (git-ignored). */
export const TEST_DATA_DIR = path.join(REPO_ROOT, 'test', 'data');

/** Prefix of scratch directories tests may make under /tmp; the runner checks it. */
export const TMP_TEST_PREFIX = '/tmp/tspod-test';

/**
 * This run's scratch root. test/run.mjs makes one per run and passes it in
 * TSPOD_TEST_ROOT, so that its leak check looks only at what this run made;
 * a test file run by hand gets test/data/adhoc-<pid>.
 */
let adhocCleanup = false;

export function testRoot(): string {
  const env = process.env.TSPOD_TEST_ROOT;
  const dir = env ? path.resolve(env) : path.join(TEST_DATA_DIR, `adhoc-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  if (!env && !adhocCleanup) {
    adhocCleanup = true;
    // Exit hooks run newest first, so this runs after the teardowns of what
    // was made inside: it removes the ad-hoc root if they left it empty.
    onExit(() => {
      try {
        fs.rmdirSync(dir);
      } catch {
        // not empty: something to look at
      }
    });
  }
  return dir;
}

/** A new, empty directory under this run's scratch root: `<root>/<prefix>-XXXXXX`. */
export function makeTempDir(prefix = 'tmp'): string {
  const safe = prefix.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60) || 'tmp';
  return fs.mkdtempSync(path.join(testRoot(), `${safe}-`));
}
