/**
 * The two hosts of `vxtap bench --hosts A,B`: connects an agent on each (SSH
 * or local), checks the build and root, takes each host's lock, finds the
 * underlay (addresses, devices, MTU), measures the clock offsets, records
 * each host's environment, and gives the run what it needs: mode
 * availability on the hosts and a `Topology` whose hosts are the agents.
 * Nothing is created on a host before all of that passed.
 */
import { effectivePriority, type CpuPlacement, type CpuPriority } from '../placement.js';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../../src/host/procstat.js';
import { listRunStates } from '../state.js';
import type { BenchResult } from '../result.js';
import { buildId } from './build.js';
import { cacheSubdir, deployBuild } from './deploy.js';
import { AgentClient, RemoteHost, startKeepAlive } from './client.js';
import { buildMismatch, describeBuild, preciseNowMs, PROTOCOL_VERSION, type BuildId, type HelloResult } from './protocol.js';
import { agentCommand, parseHostDest, SshControl, type HostDest, type SshOptions } from './ssh.js';

/** Options of a --hosts run (validated by validateRemoteOptions). */
export interface RemoteOptions {
  hosts: [string, string];
  ssh: SshOptions;
  /** Underlay addresses of A and B; default: the source address each uses towards the other. */
  underlay?: [string, string];
  /** Overlay network, CIDR (A gets .1, B gets .2 of it). */
  overlay: string;
  vni: number;
  port: number;
  /** Agent lease (ms): an agent that hears nothing for this long cleans its host. */
  leaseMs: number;
  /** --cpu-priority: measuring agents move into a CPU group of their own (placement.ts). */
  cpuPriority?: CpuPriority;
  /** Copy this build to the hosts' cache first (deploy.ts). */
  deploy?: boolean;
  /**
   * --data-dev DEV_A,DEV_B: the interfaces holding the underlay addresses, which
   * the OVS modes may take over (their recipe moves the address onto a bridge
   * and puts it back). Refused when one carries the SSH session.
   */
  dataDev?: [string, string];
  /** A mode needs GRE (ovs-gre): GRE that does not arrive fails the preflight (else a warning). */
  greRequired?: boolean;
}

/** Defaults of the remote flags. */
export const REMOTE_DEFAULTS = { overlay: '198.19.0.0/16', vni: 42, port: 4789, leaseMs: 30_000 } as const;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function ipToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Overlay addresses of A and B (.1 and .2 of the network) and the prefix length. */
export function overlayAddresses(cidr: string): { a: string; b: string; prefix: number } {
  const [net, len] = cidr.split('/');
  const prefix = Number(len);
  const base = ipToInt(net) - (ipToInt(net) % 2 ** (32 - prefix));
  return { a: intToIp(base + 1), b: intToIp(base + 2), prefix };
}

/** Validate; returns an Error naming the flag, or null. */
export function validateRemoteOptions(o: RemoteOptions): Error | null {
  // the CLI splits the flags on ',': the tuple types hold only after these checks
  if ((o.hosts as readonly string[]).length !== 2) return new TypeError('--hosts must name two hosts: A,B (A sends, B receives)');
  try {
    const [a, b] = o.hosts.map(parseHostDest);
    if (a.text === b.text) return new TypeError('--hosts: A and B must be different hosts');
  } catch (e) {
    return e as Error;
  }
  if (o.underlay && ((o.underlay as readonly string[]).length !== 2 || !o.underlay.every((x) => IPV4.test(x)))) return new TypeError('--underlay must be two IPv4 addresses: ADDR_A,ADDR_B');
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(o.overlay);
  if (!m || !IPV4.test(m[1]) || Number(m[2]) < 8 || Number(m[2]) > 30) return new TypeError('--overlay must be an IPv4 CIDR with a prefix of 8..30, e.g. 198.19.0.0/16');
  if (!Number.isInteger(o.vni) || o.vni < 1 || o.vni > 16_777_215) return new TypeError('--vni must be an integer 1..16777215');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) return new TypeError('--port must be an integer 1..65535');
  if (o.ssh.configFile !== undefined && !o.ssh.configFile) return new TypeError('--ssh-config must name a file');
  if (o.dataDev && ((o.dataDev as readonly string[]).length !== 2 || !o.dataDev.every((d) => /^[A-Za-z0-9_.@-]{1,15}$/.test(d))))
    return new TypeError('--data-dev must be two interface names: DEV_A,DEV_B');
  return null;
}

/** What the result records about one host. */
export interface HostRecord {
  label: string;
  /** The SSH destination as given (never a secret). */
  ssh: string;
  hostname: string;
  build: BuildId;
  underlay: { address: string; dev: string; mtu: number | null };
  /** Agent clock minus controller clock (ms), at the start and at the end, with the round trip of the best sample. */
  clockOffsetMs: { start: number | null; startRttMs: number | null; end: number | null; endRttMs: number | null };
  environment: unknown;
  /** What the preflight found on this host (see preflight()). */
  preflight: HostPreflight | null;
  /** --cpu-priority: where this host's agent measured (placement.ts); absent in older results. */
  cpuPlacement?: CpuPlacement | null;
}

/** Preflight findings of one host. */
export interface HostPreflight {
  /** Datagrams to the VXLAN port that arrived from the peer (of `sent`); null when the port was busy here. */
  vxlanUdpFromPeer: { sent: number; received: number } | null;
  /** GRE (IP protocol 47) packets that arrived from the peer; null when not checked (no python3 for raw sockets). */
  greFromPeer?: { sent: number; received: number } | null;
  /** Largest IPv4 packet (bytes) that reaches the peer whole with DF set. */
  pathMtuToPeer: number | null;
  /** Non-required doctor checks that failed (they only limit modes). */
  doctorWarnings: string[];
  warnings: string[];
}

/** Agent clock minus ours: the best (shortest round trip) of `n` samples. */
async function clockOffset(c: AgentClient, n = 5): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Infinity };
  for (let i = 0; i < n; i++) {
    const t0 = preciseNowMs();
    const { clockMs } = await c.request<{ clockMs: number }>({ op: 'clock' });
    const t1 = preciseNowMs();
    if (t1 - t0 < best.rttMs) best = { offsetMs: clockMs - (t0 + t1) / 2, rttMs: t1 - t0 };
  }
  return best;
}

/** Start an agent on `h` (ssh, or a local child). */
function startAgent(h: HostDest, ssh: SshControl, localRoot: string, label: string, preferDeployed = false): AgentClient {
  // dist/src/cli/agent.js is `vxtap agent` without loading the rest of the CLI (see there).
  const main = path.join(localRoot, 'dist', 'src', 'cli', 'agent.js');
  if (h.local) {
    return new AgentClient(label, 'local', spawn(process.execPath, [main, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }
  return new AgentClient(label, h.text, ssh.start(h, agentCommand(process.execPath, main, cacheSubdir(buildId(localRoot)), preferDeployed)));
}

/** Connected hosts of a run. */
export class RemotePair {
  readonly records: HostRecord[] = [];
  private stopKeepAlive: () => void = () => undefined;
  readonly sameMachine: boolean;
  readonly overlay: { a: string; b: string; prefix: number };
  underlay!: { a: string; b: string; prefix: number; devA: string; devB: string; mtu: number };

  private constructor(
    readonly opts: RemoteOptions,
    readonly runId: string,
    readonly a: RemoteHost,
    readonly b: RemoteHost,
    private readonly ssh: SshControl,
  ) {
    this.sameMachine = a.hello.bootId !== '' && a.hello.bootId === b.hello.bootId;
    this.overlay = overlayAddresses(opts.overlay);
  }

  /** Both clients. */
  get clients(): AgentClient[] {
    return [this.a.client, this.b.client];
  }

  /**
   * Connect both hosts and run the checks; throws an Error naming the host and
   * the fix when one fails (nothing was created on either host then).
   */
  static async connect(opts: RemoteOptions, localRoot: string, runId: string, log: (l: string) => void, lock = true): Promise<RemotePair> {
    const dests = opts.hosts.map(parseHostDest) as [HostDest, HostDest];
    const ssh = new SshControl(opts.ssh);
    const clients: AgentClient[] = [];
    try {
      const labels = ['A', 'B'];
      const hellos: HelloResult[] = [];
      const mine = buildId(localRoot); // once: another commit landing mid-connect must not split the check
      const hello = async (i: number, preferDeployed: boolean): Promise<HelloResult> => {
        const c = startAgent(dests[i], ssh, localRoot, labels[i], preferDeployed);
        clients[i] = c;
        const h = await Promise.race([
          c.request<HelloResult>({
            op: 'hello',
            protocol: PROTOCOL_VERSION,
            runId,
            label: labels[i],
            lock,
            leaseMs: opts.leaseMs,
            ...(lock && opts.cpuPriority ? { cpuPriority: effectivePriority(opts.cpuPriority) } : {}),
          }),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`host ${labels[i]} (${dests[i].text}): no answer from the agent within 30 s`)), 30_000).unref()),
        ]).catch((e: unknown) => {
          throw new Error(explainConnectFailure((e as Error).message), { cause: e });
        });
        const why = buildMismatch(mine, h.build);
        if (why) {
          await c.close(5000).catch(() => undefined);
          throw Object.assign(
            new Error(
              `host ${labels[i]} (${dests[i].text}) runs another vxtap build (${why}): host ${describeBuild(h.build)}, controller ${describeBuild(mine)}; run with --deploy to copy this build to the host`,
            ),
            { code: 'EBUILD' },
          );
        }
        return h;
      };
      const connectOne = async (i: number): Promise<HelloResult> => {
        log(`  host ${labels[i]}: connecting to ${dests[i].text}`);
        try {
          return await hello(i, false);
        } catch (err) {
          // --deploy: a host without this build (none, or another) gets it, then a second try.
          const missing = (err as { code?: string }).code === 'EBUILD' || /not installed|exited 127/.test((err as Error).message);
          if (!opts.deploy || dests[i].local || !missing) throw err;
          await clients[i]?.close(5000).catch(() => undefined);
          deployBuild(ssh, dests[i], labels[i], localRoot, mine, log);
          return hello(i, true);
        }
      };
      // Both hosts at once; the first failure (in host order) is the one reported.
      const settled = await Promise.allSettled([connectOne(0), connectOne(1)]);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      for (const r of settled) if (r.status === 'fulfilled') hellos.push(r.value);
      for (let i = 0; i < 2; i++) {
        if (hellos[i].uid !== 0) throw new Error(`host ${labels[i]} (${dests[i].text}): the agent is not root (uid ${hellos[i].uid}); log in as root or allow passwordless sudo (sudo -n)`);
      }
      const hosts = [0, 1].map((i) => new RemoteHost(labels[i], dests[i].text, clients[i], hellos[i], localRoot, opts.leaseMs)) as [RemoteHost, RemoteHost];
      const pair = new RemotePair(opts, runId, hosts[0], hosts[1], ssh);
      pair.stopKeepAlive = startKeepAlive(clients, opts.leaseMs);
      await pair.findUnderlay();
      // The environments (a 1 s steal sample each) are read while the preflight runs.
      const envsP = Promise.all([pair.a, pair.b].map((h, i) => h.client.request({ op: 'environment', dev: i === 0 ? pair.underlay.devA : pair.underlay.devB })));
      envsP.catch(() => undefined);
      const pre = await pair.preflight(localRoot, log);
      const envs = await envsP;
      const offsets = await Promise.all(clients.map((c) => clockOffset(c)));
      for (let i = 0; i < 2; i++) {
        const h = hosts[i];
        pair.records.push({
          label: h.label,
          ssh: dests[i].text,
          hostname: h.hello.hostname,
          build: h.hello.build,
          underlay: { address: i === 0 ? pair.underlay.a : pair.underlay.b, dev: i === 0 ? pair.underlay.devA : pair.underlay.devB, mtu: pair.underlay.mtu },
          clockOffsetMs: { start: offsets[i].offsetMs, startRttMs: offsets[i].rttMs, end: null, endRttMs: null },
          environment: envs[i],
          preflight: pre[i],
          cpuPlacement: h.hello.cpuPlacement ?? null,
        });
        const steal = (envs[i] as { baselineStealRatio?: number | null }).baselineStealRatio;
        if (typeof steal === 'number' && steal > 0.05) pre[i].warnings.push(`idle steal ${(steal * 100).toFixed(1)}%: the hypervisor takes CPU from this host; figures will be noisy`);
        for (const w of pre[i].warnings) log(`  host ${h.label}: warning: ${w}`);
        log(
          `  host ${h.label}: ${h.hello.hostname}, underlay ${pair.records[i].underlay.address} on ${pair.records[i].underlay.dev}, clock offset ${offsets[i].offsetMs.toFixed(3)} ms (rtt ${offsets[i].rttMs.toFixed(3)} ms)`,
        );
      }
      return pair;
    } catch (err) {
      await Promise.all(clients.map((c) => c.close(5000).catch(() => undefined)));
      ssh.close();
      throw err;
    }
  }

  /** The device and prefix holding `addr` on host `h`, or null. */
  private static async devOf(h: RemoteHost, addr: string): Promise<{ dev: string; prefix: number } | null> {
    const r = await h.exec(['ip', '-o', '-4', 'addr', 'show'], { allowFail: true });
    for (const line of r.stdout.split('\n')) {
      const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\/(\d+)/.exec(line);
      if (m && m[2] === addr) return { dev: m[1].replace(/@.*$/, ''), prefix: Number(m[3]) };
    }
    return null;
  }

  /** Source address and device host `h` uses towards `dst`. */
  private static async routeTo(h: RemoteHost, dst: string): Promise<{ src: string; dev: string } | null> {
    const r = await h.exec(['ip', '-o', 'route', 'get', dst], { allowFail: true });
    const src = /\bsrc\s+([\d.]+)/.exec(r.stdout)?.[1];
    const dev = /\bdev\s+(\S+)/.exec(r.stdout)?.[1];
    return src && dev ? { src, dev } : null;
  }

  private async findUnderlay(): Promise<void> {
    let addrs = this.opts.underlay;
    if (!addrs) {
      // Where each host is reached: the server address of its SSH session (a local host: the client address the other saw).
      const seen = (h: RemoteHost, other: RemoteHost) => h.hello.sshConnection?.split(' ')[2] ?? other.hello.sshConnection?.split(' ')[0] ?? null;
      const bAddr = seen(this.b, this.a);
      const aAddr = seen(this.a, this.b);
      if (!aAddr || !bAddr) throw new Error("cannot tell the hosts' addresses from their SSH sessions (both local?); give --underlay ADDR_A,ADDR_B");
      const ra = await RemotePair.routeTo(this.a, bAddr);
      const rb = await RemotePair.routeTo(this.b, aAddr);
      if (!ra || !rb) throw new Error(`no route between the hosts (A -> ${bAddr}: ${ra ? 'ok' : 'none'}, B -> ${aAddr}: ${rb ? 'ok' : 'none'}); give --underlay ADDR_A,ADDR_B`);
      addrs = [ra.src, rb.src];
    }
    const [da, db] = await Promise.all([RemotePair.devOf(this.a, addrs[0]), RemotePair.devOf(this.b, addrs[1])]);
    if (!da) throw new Error(`--underlay: host A (${this.a.where}) has no interface with address ${addrs[0]}`);
    if (!db) throw new Error(`--underlay: host B (${this.b.where}) has no interface with address ${addrs[1]}`);
    if (this.opts.dataDev) {
      for (const [i, h, d] of [
        [0, this.a, da],
        [1, this.b, db],
      ] as const) {
        const want = this.opts.dataDev[i];
        if (d.dev !== want) throw new Error(`--data-dev: host ${h.label} (${h.where}): ${want} does not hold the underlay address ${addrs[i]} (it is on ${d.dev})`);
        // The SSH session's route: the interface it leaves by must not be handed to OVS.
        const client = h.hello.sshConnection?.split(' ')[0];
        const r = client ? await RemotePair.routeTo(h, client) : null;
        if (r && r.dev === want) throw new Error(`--data-dev: host ${h.label} (${h.where}): ${want} carries this bench's SSH session (to ${String(client)}); name a separate data interface`);
      }
    }
    const mtuOf = async (h: RemoteHost, dev: string) => Number((await h.exec(['cat', `/sys/class/net/${dev}/mtu`])).stdout.trim());
    const mtu = Math.min(await mtuOf(this.a, da.dev), await mtuOf(this.b, db.dev));
    this.underlay = { a: addrs[0], b: addrs[1], prefix: da.prefix, devA: da.dev, devB: db.dev, mtu };
  }

  /**
   * Before anything is created: `vxtap doctor` on each host (a failed required
   * check refuses, with its fix), VXLAN UDP to the port in both directions (a
   * firewall that drops it is named: host, direction, fix), path MTU both ways.
   * Throws one Error listing every failure.
   */
  async preflight(localRoot: string, log: (l: string) => void): Promise<[HostPreflight, HostPreflight]> {
    const hosts = [this.a, this.b];
    const pre: [HostPreflight, HostPreflight] = [
      { vxlanUdpFromPeer: null, greFromPeer: null, pathMtuToPeer: null, doctorWarnings: [], warnings: [] },
      { vxlanUdpFromPeer: null, greFromPeer: null, pathMtuToPeer: null, doctorWarnings: [], warnings: [] },
    ];
    const failures: string[] = [];
    const main = path.join(localRoot, 'dist', 'src', 'cli', 'main.js');
    log('  preflight: vxtap doctor, VXLAN UDP and GRE both ways, path MTU both ways');
    // doctor runs while the packets go both ways
    const docsP = Promise.all(hosts.map((h) => h.exec([process.execPath, main, 'doctor', '--json'], { allowFail: true, timeoutMs: 60_000 })));
    docsP.catch(() => undefined);
    await this.preflightNetwork(pre, failures);
    const docs = await docsP;
    for (let i = 0; i < 2; i++) {
      let checks: { name: string; ok: boolean; detail: string; fix: string | null; required: boolean }[] = [];
      try {
        checks = (JSON.parse(docs[i].stdout) as { checks: typeof checks }).checks;
      } catch {
        failures.push(`host ${hosts[i].label} (${hosts[i].where}): vxtap doctor failed: ${(docs[i].stderr || docs[i].stdout).trim().slice(0, 300)}`);
      }
      for (const c of checks.filter((x) => !x.ok)) {
        const line = `${c.name}: ${c.detail}${c.fix ? `; fix: ${c.fix}` : ''}`;
        if (c.required) failures.push(`host ${hosts[i].label} (${hosts[i].where}): doctor: ${line}`);
        else pre[i].doctorWarnings.push(line);
      }
    }
    if (failures.length) throw new Error(`preflight failed:\n  ${failures.join('\n  ')}`);
    return pre;
  }

  /**
   * GRE (IP protocol 47) both ways: raw sockets, which Node has not, so python3
   * on both hosts (skipped with a warning without it). A raw socket receives
   * after the firewall's input hook, so a drop there is seen.
   */
  private async preflightGre(pre: [HostPreflight, HostPreflight], failures: string[]): Promise<void> {
    const hosts = [this.a, this.b];
    const addr = [this.underlay.a, this.underlay.b];
    const py = await Promise.all(hosts.map((h) => h.exec(['sh', '-c', 'command -v python3'], { allowFail: true })));
    if (py.some((r) => r.code !== 0)) {
      for (const p of pre) p.warnings.push('GRE (IP protocol 47) check skipped: python3 missing on a host (raw sockets)');
      return;
    }
    const probes = 5;
    // The receiver counts GRE packets from the peer until all `probes` came, SIGTERM, or a 30 s cap, and
    // prints the count. It used to listen for a fixed 1.5 s from "ready": on a loaded machine the
    // sender's start (an SSH round trip and a python3 start) took longer, and the preflight refused
    // GRE as "a firewall drops it".
    const recv =
      'import socket,sys,time,signal\nn=0\ndef done(*a):\n  print(n,flush=True)\n  sys.exit(0)\nsignal.signal(signal.SIGTERM,done)\n' +
      's=socket.socket(socket.AF_INET,socket.SOCK_RAW,47)\ns.bind((sys.argv[1],0))\ns.settimeout(0.05)\nprint("ready",flush=True)\n' +
      'end=time.time()+float(sys.argv[3])\nwhile time.time()<end and n<int(sys.argv[4]):\n  try:\n    d,a=s.recvfrom(4096)\n    n+=a[0]==sys.argv[2]\n  except socket.timeout:\n    pass\ndone()\n';
    const send =
      'import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,47)\ns.bind((sys.argv[1],0))\nfor i in range(int(sys.argv[3])):\n  s.sendto(bytes([0,0,0x65,0x58]),(sys.argv[2],0))\n  time.sleep(0.01)\n';
    for (const [s, d] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const listener = hosts[d].spawn(['python3', '-c', recv, addr[d], addr[s], '30', String(probes)]);
      const deadline = Date.now() + 15_000;
      while (!/ready/.test(listener.stdout()) && !listener.done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await hosts[s].exec(['python3', '-c', send, addr[s], addr[d], String(probes)], { allowFail: true, timeoutMs: 10_000 });
      // All arrived: it has ended by itself. Otherwise a second for stragglers, then SIGTERM.
      const grace = Date.now() + 1000;
      while (!listener.done() && Date.now() < grace) await new Promise((r) => setTimeout(r, 25));
      if (!listener.done()) await listener.stop(2000);
      await listener.exited;
      const received = Number(listener.stdout().trim().split('\n').pop());
      if (!Number.isFinite(received)) {
        pre[d].warnings.push(`GRE check from host ${hosts[s].label} failed to run: ${listener.stderr().trim().slice(-200)}`);
        continue;
      }
      pre[d].greFromPeer = { sent: probes, received };
      if (received === 0) {
        const msg =
          `GRE (IP protocol 47) from host ${hosts[s].label} (${hosts[s].where}, ${addr[s]}) does not arrive at host ${hosts[d].label} (${hosts[d].where}, ${addr[d]}): a firewall drops it. ` +
          `Fix on host ${hosts[d].label}: nft insert rule inet filter input ip saddr ${addr[s]} ip protocol gre accept (or: iptables -I INPUT -p gre -s ${addr[s]} -j ACCEPT)`;
        if (this.opts.greRequired) failures.push(msg);
        else pre[d].warnings.push(msg);
      }
    }
  }

  /** VXLAN UDP both ways and path MTU both ways (part of preflight). */
  private async preflightNetwork(pre: [HostPreflight, HostPreflight], failures: string[]): Promise<void> {
    await this.preflightGre(pre, failures);
    const hosts = [this.a, this.b];
    const addr = [this.underlay.a, this.underlay.b];
    const port = this.opts.port;
    for (const [s, d] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const src = hosts[s];
      const dst = hosts[d];
      let handle: number;
      try {
        handle = (await dst.client.request<{ handle: number }>({ op: 'udpListen', addr: addr[d], port })).handle;
      } catch (e) {
        pre[d].warnings.push(`VXLAN UDP check from host ${src.label} skipped: ${(e as Error).message.replace(/^host \S+ \([^)]*\): /, '')}`);
        continue;
      }
      const { sent } = await src.client.request<{ sent: number }>({ op: 'udpSend', from: addr[s], to: addr[d], port, count: 5 });
      // Answered as soon as all arrived; a firewall costs the 3 s (a fixed 300 ms read too early under load).
      const { received } = await dst.client.request<{ received: number }>({ op: 'udpResult', handle, from: addr[s], expect: sent, waitMs: 3000 });
      pre[d].vxlanUdpFromPeer = { sent, received };
      if (received === 0) {
        failures.push(
          `VXLAN (UDP port ${port}) from host ${src.label} (${src.where}, ${addr[s]}) does not arrive at host ${dst.label} (${dst.where}, ${addr[d]}): ${sent} sent, 0 received. ` +
            `A firewall drops it (host ${dst.label}'s input, host ${src.label}'s output, or a filter between them). ` +
            `Fix on host ${dst.label}: nft insert rule inet filter input ip saddr ${addr[s]} udp dport ${port} accept (or: iptables -I INPUT -p udp -s ${addr[s]} --dport ${port} -j ACCEPT), and let it leave host ${src.label}`,
        );
      }
    }
    for (const [s, d] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const ok = async (size: number) => (await hosts[s].exec(['ping', '-n', '-c', '1', '-W', '1', '-M', 'do', '-s', String(size - 28), addr[d]], { allowFail: true, timeoutMs: 5000 })).code === 0;
      let pmtu: number | null = null;
      if (await ok(this.underlay.mtu)) pmtu = this.underlay.mtu;
      else if (await ok(576)) {
        let lo = 576;
        let hi = this.underlay.mtu;
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (await ok(mid)) lo = mid;
          else hi = mid;
        }
        pmtu = lo;
      }
      pre[s].pathMtuToPeer = pmtu;
      if (pmtu === null)
        failures.push(
          `host ${hosts[s].label} (${hosts[s].where}) cannot ping host ${hosts[d].label} at ${addr[d]} (ICMP echo, 576 bytes, DF): no path or ICMP filtered; allow ICMP echo between the hosts`,
        );
      else if (pmtu < this.underlay.mtu) pre[s].warnings.push(`path MTU to host ${hosts[d].label} is ${pmtu}, below the interface MTU ${this.underlay.mtu}: overlays will see fragmentation or drops`);
    }
  }

  /** Put the hosts, the underlay and the overlay into a result (before the first mode-round). */
  describe(result: BenchResult): void {
    result.hosts = this.records;
    result.topology = {
      kind: 'ssh-hosts',
      hosts: [
        { label: 'A', namespace: this.a.where },
        { label: 'B', namespace: this.b.where },
      ],
      underlay: { a: this.underlay.a, b: this.underlay.b, prefix: this.underlay.prefix, mtu: this.underlay.mtu, netem: null },
      overlay: this.overlay,
      vni: this.opts.vni,
      udpPort: this.opts.port,
    };
    result.options.mtu = this.underlay.mtu;
  }

  /** Measure the end clock offsets into the records (best effort). */
  async finish(): Promise<void> {
    await Promise.all(
      this.clients.map(async (c, i) => {
        if (c.gone) return;
        const o = await clockOffset(c).catch(() => null);
        if (o) {
          this.records[i].clockOffsetMs.end = o.offsetMs;
          this.records[i].clockOffsetMs.endRttMs = o.rttMs;
        }
      }),
    );
  }

  /** Stop what runs on the hosts now (Ctrl-C): running commands are killed, the run then tears down. */
  interrupt(): void {
    for (const c of this.clients) c.request({ op: 'interrupt' }).catch(() => undefined);
  }

  /** Tell each agent the run is over (it removes anything left and releases the lock) and disconnect. */
  async close(): Promise<void> {
    this.stopKeepAlive();
    await Promise.all(this.clients.map((c) => c.request({ op: 'bye' }).catch(() => undefined)));
    await Promise.all(this.clients.map((c) => c.close(5000).catch(() => undefined)));
    this.ssh.close();
  }
}

/** A connection failure, with the likely fix. */
function explainConnectFailure(msg: string): string {
  if (/sudo: .*password/i.test(msg)) return `${msg}\n  fix: log in as root, or allow passwordless sudo for this user (sudo -n must work)`;
  if (/Permission denied|publickey/i.test(msg)) return `${msg}\n  fix: an SSH key the host accepts (ssh-copy-id), or --ssh-option IdentityFile=...`;
  if (/not installed|command not found|exited 127/i.test(msg)) return `${msg}\n  fix: vxtap bench --deploy copies this build to the host (it needs Node.js 20)`;
  return msg;
}

/** `vxtap bench --cleanup --hosts A,B`: remove what killed runs left on both hosts. */
export async function cleanupHosts(opts: RemoteOptions, localRoot: string, force: boolean, log: (l: string) => void): Promise<string[]> {
  const dests = opts.hosts.map(parseHostDest);
  const ssh = new SshControl(opts.ssh);
  const lines: string[] = [];
  try {
    for (let i = 0; i < dests.length; i++) {
      const label = i === 0 ? 'A' : 'B';
      const c = startAgent(dests[i], ssh, localRoot, label);
      try {
        await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, runId: `cleanup-${process.pid}`, label, lock: false, leaseMs: opts.leaseMs });
        const r = await c.request<{ processes: string[]; links: string[]; dirs: string[]; skipped: string[] }>({ op: 'cleanup', force });
        for (const p of r.processes) lines.push(`host ${label} (${dests[i].text}): killed process ${p}`);
        for (const l of r.links) lines.push(`host ${label} (${dests[i].text}): deleted link ${l}`);
        for (const d of r.dirs) lines.push(`host ${label} (${dests[i].text}): removed directory ${d}`);
        for (const s of r.skipped) lines.push(`host ${label} (${dests[i].text}): skipped run ${s}`);
        await c.request({ op: 'bye' }).catch(() => undefined);
      } catch (e) {
        lines.push(`host ${label} (${dests[i].text}): ${(e as Error).message}`);
      } finally {
        await c.close(5000).catch(() => undefined);
      }
    }
  } finally {
    ssh.close();
  }
  // A killed controller's run state here: it records nothing on this machine (the hosts hold
  // the run), so with its process gone it is only a file to remove.
  for (const { file, data } of listRunStates()) {
    const empty = data.namespaces.length === 0 && data.processes.length === 0 && data.dirs.length === 0;
    if (empty && data.pid !== process.pid && !pidAlive(data.pid)) {
      rmSync(file, { force: true });
      lines.push(`this machine: removed the run state of killed controller ${data.runId} (${file})`);
    }
  }
  if (lines.length === 0) lines.push('nothing to clean up on the hosts');
  log(lines.join('\n'));
  return lines;
}
