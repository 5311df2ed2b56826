/**
 * `vxtap doctor`: preflight checks for the dataplane and the bench, each with
 * a clear fix. Kernel features are tried for real in a throwaway `vxb`
 * namespace (a VXLAN device, a netem qdisc, a TAP), never assumed.
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { haveCommand, run } from '../host/exec.js';
import { ovsKernelModulePresent, ovsUnavailableReason, ovsVersion } from '../host/ovs.js';
import { kernelVxlanUnavailableReason } from '../../bench/modes.js';
import { TNL_VNET_HDR_LEN, UPLINK_OFFLOADS } from '../native/index.js';

/** One check. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it (null when ok). */
  fix: string | null;
  /** False for checks that only limit the bench (a mode becomes unavailable). */
  required: boolean;
}

async function tryInNetns(ns: string, argv: string[][]): Promise<string | null> {
  await run(['ip', 'netns', 'add', ns], { allowFail: true });
  try {
    for (const a of argv) {
      const r = await run(a, { netns: ns, allowFail: true });
      if (r.code !== 0) return `${a.join(' ')}: ${(r.stderr || r.stdout).trim()}`;
    }
    return null;
  } finally {
    await run(['ip', 'netns', 'del', ns], { allowFail: true });
  }
}

/** Run every check. */
export async function runDoctor(): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const add = (name: string, ok: boolean, detail: string, fix: string, required = true) => checks.push({ name, ok, detail, fix: ok ? null : fix, required });
  const root = process.getuid?.() === 0;
  add('root', root, root ? 'running as root' : `running as uid ${String(process.getuid?.())}`, 'run as root (sudo vxtap ...): namespaces, TAP devices and OVS need CAP_NET_ADMIN');
  add('/dev/net/tun', existsSync('/dev/net/tun'), existsSync('/dev/net/tun') ? 'present' : 'missing', 'modprobe tun; in a container add --device /dev/net/tun');
  const tag = `vxbdoc${process.pid % 10000}`;
  if (root) {
    const nsErr = await tryInNetns(`${tag}n`, []);
    add('network namespaces', nsErr === null, nsErr ?? 'ip netns add works', 'install iproute2; the kernel needs CONFIG_NET_NS');
    const vx = await kernelVxlanUnavailableReason(`${tag}v`);
    add('kernel VXLAN', vx === null, vx ?? 'created a VXLAN device in a throwaway namespace', 'the kernel needs CONFIG_VXLAN (modprobe vxlan)', false);
    const netem = await tryInNetns(`${tag}q`, [
      ['ip', 'link', 'add', 'vxbq0', 'type', 'veth', 'peer', 'name', 'vxbq1'],
      ['tc', 'qdisc', 'add', 'dev', 'vxbq0', 'root', 'netem', 'delay', '1ms'],
    ]);
    add(
      'netem',
      netem === null,
      netem ?? 'tc qdisc netem works in a throwaway namespace',
      'install iproute2 (tc) and enable CONFIG_NET_SCH_NETEM (modprobe sch_netem); needed for --delay/--loss only (--rate falls back to tbf)',
      false,
    );
    const veth = await tryInNetns(`${tag}e`, [['ip', 'link', 'add', 'vxbe0', 'type', 'veth', 'peer', 'name', 'vxbe1']]);
    add('veth', veth === null, veth ?? 'veth pairs work', 'the kernel needs CONFIG_VETH (modprobe veth)');
    const tap = await tryInNetns(`${tag}t`, [['ip', 'tuntap', 'add', 'dev', 'vxbt0', 'mode', 'tap', 'multi_queue', 'vnet_hdr']]);
    add('TAP (multi-queue, vnet_hdr)', tap === null, tap ?? 'created a multi-queue vnet_hdr TAP', 'the kernel needs CONFIG_TUN; in a container add --device /dev/net/tun and CAP_NET_ADMIN');
    const addonPath = new URL('../native/index.js', import.meta.url).href;
    if (existsSync(new URL('../../../native/build/Release/vxtap_native.node', import.meta.url))) {
      // what --uplink-bridge needs of the kernel: TUNSETOFFLOAD with TUN_F_UDP_TUNNEL_GSO (Linux 6.17+)
      const probe = `import { native } from '${addonPath}'; const n = native(); const h = n.tapOpen('vxbdu0', { vnetHdr: true }); n.tapSetVnetHdrSize(h.fd, ${TNL_VNET_HDR_LEN}); n.tapSetOffload(h.fd, ${UPLINK_OFFLOADS});`;
      const tnl = await tryInNetns(`${tag}g`, [[process.execPath, '--input-type=module', '-e', probe]]);
      add('UDP-tunnel GSO on TAP', tnl === null, tnl === null ? 'TUN_F_UDP_TUNNEL_GSO accepted (--uplink-bridge can work)' : 'refused', 'Linux 6.17 or later; needed for --uplink-bridge only', false);
    }
  }
  for (const [cmd, pkg, required] of [
    ['ip', 'iproute2', true],
    ['iperf3', 'iperf3', true],
    ['tcpdump', 'tcpdump', false],
    ['nstat', 'iproute2', true],
    ['ping', 'iputils-ping', true],
    ['taskset', 'util-linux', false],
    ['ethtool', 'ethtool', false],
    ['nft', 'nftables', false],
    ['sockperf', 'sockperf', false], // bench --latency-tool sockperf
  ] as const) {
    const ok = await haveCommand(cmd);
    let detail = ok ? 'found' : 'not found';
    if (ok && cmd === 'iperf3') detail = (await run(['iperf3', '--version'], { allowFail: true })).stdout.split('\n')[0].trim();
    add(cmd, ok, detail, `apt-get install -y ${pkg}`, required);
  }
  const ovs = await ovsUnavailableReason();
  add(
    'Open vSwitch',
    ovs === null,
    ovs ?? `${String(await ovsVersion())}; datapath ${ovsKernelModulePresent() ? 'kernel module loaded (system) and netdev' : 'userspace (netdev) only: no openvswitch kernel module'}`,
    'apt-get install -y openvswitch-switch (the bench starts its own daemons; the system service may stay stopped)',
    false,
  );
  const main = new URL('./main.js', import.meta.url);
  add('vxtap build', existsSync(main), existsSync(main) ? 'dist/src/cli/main.js present' : 'not built', 'npx tsc -p .', false);
  const addon = new URL('../../../native/build/Release/vxtap_native.node', import.meta.url);
  add(
    'native addon',
    existsSync(addon),
    existsSync(addon) ? 'native/build/Release/vxtap_native.node present' : 'not built',
    'npx node-gyp rebuild --directory native (needs g++, make, python3)',
    false,
  );
  return checks;
}

/** Register `doctor` on the program. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description('Check what vxtap and its bench need (root, /dev/net/tun, iperf3, tcpdump, Open vSwitch, kernel VXLAN, netem, UDP-tunnel GSO for --uplink-bridge), each with a fix.')
    .addOption(new Option('--json', 'print the checks as JSON to stdout').env('VXTAP_DOCTOR_JSON'))
    .addHelpText('after', '\nExit status: 0 when every required check passes, 1 otherwise. Optional checks only make bench modes unavailable.')
    .action(async (o: { json?: boolean }) => {
      const checks = await runDoctor();
      for (const c of checks) {
        process.stderr.write(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name}: ${c.detail}${c.fix ? `\n     fix: ${c.fix}` : ''}\n`);
      }
      if (o.json) process.stdout.write(`${JSON.stringify({ ok: checks.every((c) => c.ok || !c.required), checks }, null, 2)}\n`);
      process.exitCode = checks.every((c) => c.ok || !c.required) ? 0 : 1;
    });
}
