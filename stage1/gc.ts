// stage1 /gc: `[--debug] UUID`, CWD = the pod directory. Every mount of a pod
// lives in the pod's own mount namespace and vanishes with it, and this stage1
// makes no networks or cgroups yet, so there is nothing left to tear down; stage0
// then unmounts anything still below the pod directory and deletes it.
export async function main(argv: string[]): Promise<number> {
  const uuid = argv.filter((a) => !a.startsWith('--')).pop();
  if (!uuid) {
    process.stderr.write('usage: gc [--debug] UUID\n');
    return 254;
  }
  if (argv.includes('--debug')) process.stderr.write(`tspod stage1 gc: nothing to clean for pod ${uuid}\n`);
  return 0;
}
