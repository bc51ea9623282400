// Port forwards at prepare and run (issue 8 item 2): rkt's rules for the pod
// manifest's `ports` (stage1/contract/ports.ts), and, right before a pod starts,
// whether the host ports are free: no socket of the host and no other forward
// (another pod's, any CNI runtime's) holds them.
import { TspodError, ErrorCode } from '../native/errors.js';
import type { PodManifest } from '../stage1/contract/pod.js';
import { forwardedPorts, hostPortsProblem, PortError, portsNetProblem, type ForwardedPort } from '../stage1/contract/ports.js';

export const PORTS_NET_HINT = 'forwards need a network of the pod\'s own: leave --net out (the default network) or name one';

/**
 * The pod's forwards, checked as rkt does at prepare: every name found in
 * exactly one app, no two forwards of one host port, none with `--net=host|none`
 * (`net` undefined: the default network).
 */
export function checkPodPorts(manifest: Pick<PodManifest, 'ports' | 'apps'>, net: string | undefined): ForwardedPort[] {
  let forwards: ForwardedPort[];
  try {
    forwards = forwardedPorts(manifest, manifest.apps);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, (e as Error).message, { hint: e instanceof PortError ? e.hint : undefined });
  }
  const why = portsNetProblem(manifest, net);
  if (why) throw new TspodError(ErrorCode.BadInput, why, { hint: PORTS_NET_HINT });
  return forwards;
}

/** Just before a pod starts: its forwards are valid for `net` and their host ports are free. */
export function checkPortsFree(manifest: Pick<PodManifest, 'ports' | 'apps'>, net: string | undefined): void {
  const why = hostPortsProblem(checkPodPorts(manifest, net));
  if (why) throw new TspodError(ErrorCode.Conflict, why, { hint: 'free the host port or forward another one (--port=NAME:[HOSTIP:]HOSTPORT)' });
}
