// `tspod metadata-service [--listen-port=18112] [--listen-address=ADDR …]`:
// the appc metadata service (stage0/mds/). Pods register with --mds-register.
import net from 'node:net';
import { TspodError, ErrorCode } from '../native/errors.js';
import { requireRoot } from './require-root.js';
import { DEFAULT_MDS_PORT } from '../stage1/contract/mds.js';
import { mdsSocketPath } from '../stage0/mds/protocol.js';
import { command } from './command.js';

/** 127.0.0.1 (--net=host pods) and the host side of the default networks (their pods' gateway). */
export const DEFAULT_LISTEN_ADDRESSES = ['127.0.0.1', '172.16.28.1', '172.17.0.1'];

export const metadataServiceCommand = command({
  name: 'metadata-service',
  describe: 'run the appc metadata service (pods register with run --mds-register)',
  flags: {
    'listen-port': { kind: 'number', default: DEFAULT_MDS_PORT, describe: 'TCP port' },
    'listen-address': { kind: 'list', describe: `address to listen on (repeatable; default ${DEFAULT_LISTEN_ADDRESSES.join(', ')})` },
  },
  run: async (a) => {
    const port = a['listen-port'];
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TspodError(ErrorCode.BadInput, `--listen-port=${String(port)}: want a port number from 1 to 65535`);
    const addresses = a['listen-address'].length ? a['listen-address'] : DEFAULT_LISTEN_ADDRESSES;
    for (const addr of addresses) {
      if (!net.isIP(addr)) throw new TspodError(ErrorCode.BadInput, `--listen-address=${addr}: not an IP address`);
    }
    if (new Set(addresses).size !== addresses.length) throw new TspodError(ErrorCode.BadInput, '--listen-address: an address is given twice');
    requireRoot('metadata-service');
    const { runMetadataService } = await import('../stage0/mds/service.js');
    return runMetadataService({ port, addresses, socketPath: mdsSocketPath() });
  },
});
