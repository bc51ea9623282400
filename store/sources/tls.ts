// Trusted certificates for tspod's own TLS connections. bin/tspod moves
// NODE_EXTRA_CA_CERTS aside into TSPOD_EXTRA_CA_CERTS before Node starts (Node
// would otherwise read the whole file at every start, even for commands that open
// no connection); the certificates are added back here, for registries and URLs.
import fs from 'node:fs';
import tls from 'node:tls';

let cached: string[] | undefined;

/** Node's bundled roots plus the user's extra CA file, or undefined for Node's default. */
export function trustedCertificates(): string[] | undefined {
  const extra = process.env.TSPOD_EXTRA_CA_CERTS;
  if (!extra) return undefined;
  if (!cached) {
    let pem = '';
    try {
      pem = fs.readFileSync(extra, 'utf8');
    } catch {
      /* Node itself only warns about an unreadable file: do the same by ignoring it */
    }
    cached = [...tls.rootCertificates, ...(pem ? [pem] : [])];
  }
  return cached;
}
