// The appc metadata service as the pod sees it (issue 8 item 5): stage0
// registers the pod with `tspod metadata-service` (--mds-register) and writes
// what the service answered into the pod file `mds`; stage1 turns it into each
// app's AC_METADATA_URL once it knows where the pod reaches the host.
import path from 'node:path';
import { POD_FILES, readOptionalPodJson, writePodFileAtomically } from './pod.js';

/** The environment variable appc names for the service's URL. */
export const MDS_ENV = 'AC_METADATA_URL';

/** rkt's metadata service port. */
export const DEFAULT_MDS_PORT = 18112;

/** What the service answers to a registration (the pod file `mds`). */
export interface MdsRegistration {
  /** The pod's secret: the first path segment of its URL (base64url, 256 bits). */
  token: string;
  /** The TCP port the service listens on. */
  port: number;
}

/** The pod's `mds` file, or undefined when the pod was not registered. */
export function readMdsRegistration(podDir: string): MdsRegistration | undefined {
  return readOptionalPodJson<MdsRegistration>(
    podDir,
    POD_FILES.mds,
    (r) => typeof r.token === 'string' && /^[A-Za-z0-9_-]{22,}$/.test(r.token) && Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535,
  );
}

/** Writes the pod's `mds` file (0600: the token is the pod's secret). */
export function writeMdsRegistration(podDir: string, r: MdsRegistration): void {
  writePodFileAtomically(path.join(podDir, POD_FILES.mds), JSON.stringify(r), 0o600);
}

/** `http://HOST:PORT/TOKEN` (appc: the token is the URL's path). */
export function metadataUrl(host: string, r: MdsRegistration): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${r.port}/${r.token}`;
}
