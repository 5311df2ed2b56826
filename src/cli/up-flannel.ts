/**
 * `vxtap up --etcd-endpoints ...`: etcd (flannel) mode. The flannel control
 * plane reads the network config from etcd, starts the VTEP with its VNI and
 * port (static peers off, learning off, unknown underlay senders dropped),
 * takes a subnet lease (adopting its previous one after a crash, so the subnet
 * is kept) and keeps peers, routes and neighbours in step with the leases until
 * a signal (the lease is kept for the next start) or `vxtap leave` (the lease is
 * released). Refused leases and watch health are
 * in `vxtap stats` under `control`.
 */
import type { VtepConfig } from '../config.js';
import { ConfigError } from '../config.js';
import { Vtep } from '../dataplane/vtep.js';
import { formatCidr } from '../control/flannel/cidr.js';
import { FatalControlError, MissingConfigError, NetworkConfigError, startFlannelControl, type FlannelControl, type FlannelControlOptions } from '../control/flannel/index.js';

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
  // the factory above made it; control.vtep is the same object, seen through the ControlledVtep interface
  if (!vtep) throw new Error('etcd mode started without a VTEP');
  const v = vtep;
  const ctl = control;
  v.controlStatus = () => ({
    mode: 'etcd',
    subnet: ctl.subnet,
    lease: ctl.key,
    vtepMac: ctl.vtepMac,
    ...ctl.stats(),
    remoteHosts: ctl.remotes().map((r) => ({ lease: r.key, subnet: formatCidr(r.subnet), publicIP: r.publicIP, vtepMac: r.vtepMac })),
    // Bounded: a flood of hostile keys must not make the stats answer huge.
    refusedLeases: ctl
      .refused()
      .slice(0, 50)
      .map((r) => ({ lease: r.key, reason: r.reason, detail: r.detail })),
  });
  process.stderr.write(
    `vxtap: ${v.tapName} up in etcd mode (subnet ${control.subnet}, lease ${control.key}, vni ${control.config.backend.vni}, port ${control.config.backend.port}, mtu ${v.mtu}, mac ${v.tapMac})\n`,
  );
  // Only an explicit leave (`vxtap leave`: POST /leave on the control socket) releases
  // the lease, as with flanneld. A signal (`systemctl restart`, Ctrl-C), a VTEP failure
  // or a crash keeps it: the next start adopts the same lease and subnet, and the other
  // hosts' routes never change; a host that never comes back drops out after the TTL.
  const { code, release } = await new Promise<{ code: number; release: boolean }>((resolve) => {
    const onSignal = (sig: string) => {
      process.stderr.write(`vxtap: ${sig}, shutting down; keeping the lease ${ctl.key} for the next start (vxtap leave releases it)\n`);
      resolve({ code: 0, release: false });
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    v.onLeave = () => {
      process.stderr.write('vxtap: leave requested, releasing the lease and shutting down\n');
      resolve({ code: 0, release: true });
    };
    void v.failed.then(() => {
      process.stderr.write('vxtap: the VTEP failed; keeping the lease for the restart\n');
      resolve({ code: 1, release: false });
    });
    void fatalSeen.then((e) => {
      process.stderr.write(`vxtap: ${e instanceof FatalControlError ? '' : 'control plane: '}${e.message}\n`);
      resolve({ code: 1, release: false });
    });
  });
  await control.stop({ release });
  process.exit(code);
}
