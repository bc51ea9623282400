// The registration protocol between stage0 and `tspod metadata-service`: HTTP
// over a unix socket that only root can use (rkt's, with the token made by the
// service):
//   GET    /                                      → 200 (the service is up)
//   PUT    /pods/UUID   body MdsPodRecord (JSON) → 200 MdsRegistration (JSON)
//   DELETE /pods/UUID                             → 200, or 404 when unknown
import type { AppcImageManifest } from '../../stage1/contract/appc.js';
import type { PodManifest } from '../../stage1/contract/pod.js';

/** Where the service listens for registrations (TSPOD_MDS_SOCKET: another path, for tests). */
export function mdsSocketPath(): string {
  return process.env.TSPOD_MDS_SOCKET || '/run/tspod/metadata-svc.sock';
}

/** What stage0 registers: the pod's manifest and, per app, its image manifest (the app's image ID is in the pod manifest). */
export interface MdsPodRecord {
  manifest: PodManifest;
  images: Record<string, AppcImageManifest>;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
