/**
 * `vxtap up --etcd-endpoints ...`: etcd (flannel) mode. The flannel control
 * plane reads the network config from etcd, starts the VTEP with its VNI and
 * port (static peers off, learning off, unknown underlay senders dropped),
 * takes a subnet lease and keeps peers, routes and neighbours in step with the
 * leases until SIGINT/SIGTERM, then releases the lease.
 */
import type { VtepConfig } from '../config.js';
import { ConfigError } from '../config.js';
import { Vtep } from '../dataplane/vtep.js';
import { formatCidr } from '../control/flannel/cidr.js';
import {
  FatalControlError,
  MissingConfigError,
  NetworkConfigError,
  startFlannelControl,
  type FlannelControl,
  type FlannelControlOptions,
} from '../control/flannel/index.js';

export { addFlannelCliOptions, flannelOptionsFromCli } from '../control/flannel/index.js';

/** Run in etcd mode until a signal, a VTEP failure or loss of the lease. */
export async function runFlannelUp(cfg: VtepConfig, fl: FlannelControlOptions): Promise<void> {
  if (cfg.peers.length) {
    process.stderr.write('vxtap up: invalid configuration: --peer cannot be combined with --etcd-endpoints (peers come from the leases)\n');
    process.exit(2);
  }
  let fatal: (e: Error) => void = () => undefined;
  const fatalSeen = new Promise<Error>((resolve) => (fatal = resolve));
  let control: FlannelControl;
  let vtep: Vtep | undefined;
  try {
    control = await startFlannelControl({ ...fl, onFatal: (e) => fatal(e) }, async (net) => {
      vtep = await Vtep.start({ ...cfg, vni: net.vni, port: net.port, mtu: cfg.mtu ?? net.mtu, peers: [], fdb: [], learning: false, acceptUnknownPeers: false });
      return vtep;
    });
  } catch (err) {
    const e = err as Error;
    const usage = e instanceof NetworkConfigError || e instanceof MissingConfigError || e instanceof ConfigError || e instanceof TypeError;
    process.stderr.write(`vxtap up: ${usage ? 'invalid configuration: ' : ''}${e.message}\n`);
    process.exit(usage ? 2 : 1);
  }
  const v = control.vtep as Vtep;
  const ctl = control;
  v.controlStatus = () => ({
    mode: 'etcd',
    subnet: ctl.subnet,
    lease: ctl.key,
    ...ctl.stats(),
    remoteHosts: ctl.remotes().map((r) => ({ lease: r.key, subnet: formatCidr(r.subnet), publicIP: r.publicIP, vtepMac: r.vtepMac })),
  });
  process.stderr.write(
    `vxtap: ${v.tapName} up in etcd mode (subnet ${control.subnet}, lease ${control.key}, vni ${control.config.backend.vni}, port ${control.config.backend.port}, mtu ${v.mtu}, mac ${v.tapMac})\n`,
  );
  const code = await new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      process.stderr.write(`vxtap: ${sig}, releasing the lease and shutting down\n`);
      resolve(0);
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    void v.failed.then(() => resolve(1));
    void fatalSeen.then((e) => {
      process.stderr.write(`vxtap: ${e instanceof FatalControlError ? '' : 'control plane: '}${e.message}\n`);
      resolve(1);
    });
  });
  await control.stop({ release: true });
  process.exit(code);
}
