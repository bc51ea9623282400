// Image and pod-manifest isolators (appc spec/ace.md "Isolators"). tspod applies
// os/linux/no-new-privileges today; every other isolator that limits or
// confines an app (capabilities, seccomp, resources, LSM labels, sysctls) is not
// applied yet, and an app that asked for one must not run as if it had not:
// prepare refuses it, naming the isolator, unless --insecure-options=isolators
// says to run without it (then each one is named in a warning). Unknown
// isolator names are only warned about, as the spec allows.
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import type { AppcIsolator } from '../stage1/contract/appc.js';

/** Isolators stage1 applies. */
const APPLIED = new Set(['os/linux/no-new-privileges']);

/** Isolators appc or rkt define that this version does not apply. */
const NOT_APPLIED = new Set([
  'os/linux/capabilities-retain-set',
  'os/linux/capabilities-remove-set',
  'os/linux/seccomp-retain-set',
  'os/linux/seccomp-remove-set',
  'os/linux/oom-score-adj',
  'os/linux/cpu-shares',
  'os/linux/selinux-context',
  'os/linux/apparmor-profile',
  'os/unix/sysctl',
  'resource/cpu',
  'resource/memory',
  'resource/block-bandwidth',
  'resource/block-iops',
  'resource/network-bandwidth',
]);

/**
 * Checks the isolators of one app (`where` names it in messages: `app web`, or
 * `the pod` for pod-level isolators). Throws for one that is not applied
 * unless `runAnyway`; warns about unknown ones.
 */
export function checkIsolators(where: string, isolators: readonly AppcIsolator[] | undefined, runAnyway: boolean): void {
  for (const iso of isolators ?? []) {
    const name = String(iso?.name ?? '');
    if (APPLIED.has(name)) continue;
    if (!NOT_APPLIED.has(name)) {
      log().warn(`${where}: unknown isolator ${JSON.stringify(name)} ignored`);
      continue;
    }
    if (runAnyway) {
      log().warn(`${where}: isolator ${JSON.stringify(name)} is not applied by this version of tspod (--insecure-options=isolators)`);
      continue;
    }
    throw new TspodError(ErrorCode.Unsupported, `${where}: isolator ${JSON.stringify(name)} is not applied by this version of tspod`, {
      hint: 'give --insecure-options=isolators to run without it',
    });
  }
}
