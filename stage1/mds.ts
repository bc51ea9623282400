// AC_METADATA_URL for a pod that stage0 registered with the metadata service
// (the pod file `mds`): http://HOST:PORT/TOKEN, where HOST is where the pod
// reaches the host: 127.0.0.1 on the host's network, else the host side
// (gateway) of the pod's first network, as CNI set it up (pod file `networks`).
import { readMdsRegistration, metadataUrl, MDS_ENV } from './contract/mds.js';
import { readPodNetworks } from './contract/networks.js';
import type { NameValue } from './contract/appc.js';

/** Where a pod on `net` reaches the service; throws when it cannot. */
export function metadataHost(podDir: string, net: string): string {
  if (net === 'host') return '127.0.0.1';
  if (net === 'none') throw new Error('--mds-register: a pod with --net=none cannot reach the metadata service');
  const first = readPodNetworks(podDir)[0];
  if (!first?.gateway) {
    throw new Error(`--mds-register: the pod's first network${first ? ` (${first.name})` : ''} has no gateway on the host, so the pod cannot reach the metadata service`);
  }
  return first.gateway;
}

/**
 * Adds AC_METADATA_URL to every app's environment (and so to enter's env
 * files) when the pod is registered. Call it after the networks are up.
 */
export function addMetadataUrl(podDir: string, net: string, apps: Array<{ env: NameValue[] }>): void {
  const reg = readMdsRegistration(podDir);
  if (!reg) return;
  const url = metadataUrl(metadataHost(podDir, net), reg);
  for (const a of apps) {
    a.env = a.env.filter((e) => e.name !== MDS_ENV);
    a.env.push({ name: MDS_ENV, value: url });
  }
}
