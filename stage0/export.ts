// `export [--app=NAME] UUID OUT.aci`: an exited pod's app rootfs (its image layers
// with the app's overlay upper directory on top) written as an ACI.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import type { AppcImageManifest } from '../stage1/contract/appc.js';
import { POD_FILES } from '../stage1/contract/pod.js';
import { exportAci } from '../store/export-aci.js';
import { renderLayers } from '../store/layers/render.js';
import type { Store } from '../store/store.js';
import { readManifest } from './inspect.js';
import { PodsDir } from './pods.js';
import { readUserNamespace, unshiftTree } from './userns.js';

export async function exportPod(store: Store, podsRoot: string, uuidPrefix: string, app: string | undefined, out: string, overwrite: boolean): Promise<void> {
  if (!out.endsWith('.aci')) throw new TspodError(ErrorCode.BadInput, `output file ${JSON.stringify(out)} must end in .aci`);
  if (fs.existsSync(out) && !overwrite) throw new TspodError(ErrorCode.Conflict, `output ACI file ${JSON.stringify(out)} exists`, { hint: 'try --overwrite' });
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(uuidPrefix)}`);
  try {
    const state = pod.state();
    if (state !== 'exited' && state !== 'exited garbage') {
      throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is ${state}: only exited pods can be exported`);
    }
    const names = readManifest(pod)?.apps.map((a) => a.name) ?? [];
    const name = app ?? (names.length === 1 ? names[0] : undefined);
    if (!name || !names.includes(name)) {
      throw new TspodError(ErrorCode.BadInput, app ? `pod "${uuid}" has no app ${JSON.stringify(app)}` : `pod "${uuid}" has ${names.length} apps`, {
        hint: `specify one with --app (${names.join(', ')})`,
      });
    }
    const layers = JSON.parse(fs.readFileSync(path.join(pod.dir, POD_FILES.appLayers(name)), 'utf8')) as string[];
    const upper = path.join(pod.dir, POD_FILES.overlayUpper(name));
    const copied = path.join(pod.dir, POD_FILES.appCopiedRootfs(name)); // --no-overlay pods
    const sources = fs.existsSync(copied) ? [copied] : [...layers, ...(fs.existsSync(upper) ? [upper] : [])];
    const manifest = JSON.parse(fs.readFileSync(path.join(pod.dir, POD_FILES.appManifest(name)), 'utf8')) as AppcImageManifest;
    const rootfs = store.scratch().path('pod-export');
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
    try {
      await renderLayers(sources, rootfs);
      // --private-users: what the app wrote (and a --no-overlay copy) is in the pod's range.
      const userns = readUserNamespace(pod.dir);
      if (userns) unshiftTree(rootfs, userns);
      await exportAci({ manifest, rootfsDir: rootfs, out, overwrite });
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  } finally {
    pod.close();
  }
}
