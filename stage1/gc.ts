// stage1 /gc: `[--debug] UUID`, CWD = the pod directory. Every mount of a pod
// lives in the pod's own mount namespace and vanishes with it; what is left to
// tear down is the pod's network (network/setup.ts: CNI DEL of what the record
// says was added, the namespace file) and its cgroups (contract/cgroups.ts):
// tspod/<uuid> and below, in the host's layout, and in the hybrid layout's
// cgroup2 at /sys/fs/cgroup/unified too (where a pod started in a mount
// namespace that saw only cgroup v2 made them). stage0 then unmounts anything
// still below the pod directory and deletes it.
// (At a normal exit the helper already released the network: network/setup.ts's
// release list, run by tspod-helper net-release; what is left here is a pod whose helper was killed.)
import { detectCgroups, removePodCgroups, type CgroupLayout } from './contract/cgroups.js';
import { tearDownNetworks } from './network/setup.js';
import { helperPath } from './sea.js';

export async function main(argv: string[]): Promise<number> {
  const uuid = argv.filter((a) => !a.startsWith('--')).pop();
  if (!uuid || !/^[0-9A-Za-z-]+$/.test(uuid)) {
    process.stderr.write('usage: gc [--debug] UUID\n');
    return 254;
  }
  const debug = argv.includes('--debug');
  for (const p of tearDownNetworks(process.cwd(), helperPath())) process.stderr.write(`tspod stage1 gc: pod ${uuid}: network not fully released: ${p}\n`);
  const layouts: CgroupLayout[] = [detectCgroups()];
  const unified = detectCgroups('/sys/fs/cgroup/unified');
  if (unified.version === 2) layouts.push(unified);
  const left = layouts.flatMap((l) => removePodCgroups(l, uuid));
  for (const l of left) process.stderr.write(`tspod stage1 gc: pod ${uuid}: cgroup not removed: ${l}\n`);
  if (debug) process.stderr.write(`tspod stage1 gc: pod ${uuid}: network released, cgroups removed\n`);
  return 0;
}
