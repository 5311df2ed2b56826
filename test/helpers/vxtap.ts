/**
 * Test helpers: two-host topologies in namespaces, a running `vxtap up` in a
 * namespace, kernel VXLAN devices, and bounded traffic (ping, TCP transfer).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { HostScope, uniqueTag } from '../../src/host/netns.js';
import { run, output, stop } from '../../src/host/exec.js';
import { fetchStatus, type VtepStatus } from '../../src/dataplane/vtep.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist/src/cli/main.js');
export const TRANSFER = path.join(REPO, 'test/helpers/tcp-transfer.mjs');

/** A host of a test topology: a namespace with an underlay address. */
export interface Host {
  ns: string;
  dev: string;
  underlay: string;
}

/**
 * Two namespaces joined by a veth pair: underlay 198.18.0.1/24 and .2/24, or with
 * `ipv6` 2001:2::1/64 and ::2/64 (the IPv6 benchmarking range, no DAD delay).
 */
export async function twoHosts(scope: HostScope, mtu = 1500, ipv6 = false): Promise<[Host, Host]> {
  const t = uniqueTag();
  const a = await scope.netns(`a${t}`);
  const b = await scope.netns(`b${t}`);
  const da = `va${t}`;
  const db = `vb${t}`;
  await scope.veth({ name: da, netns: a }, { name: db, netns: b }, mtu);
  const [ua, ub] = ipv6 ? ['2001:2::1', '2001:2::2'] : ['198.18.0.1', '198.18.0.2'];
  if (ipv6) {
    await run(['ip', '-6', 'addr', 'add', `${ua}/64`, 'dev', da, 'nodad'], { netns: a });
    await run(['ip', '-6', 'addr', 'add', `${ub}/64`, 'dev', db, 'nodad'], { netns: b });
  } else {
    await scope.addr(a, da, `${ua}/24`);
    await scope.addr(b, db, `${ub}/24`);
  }
  return [
    { ns: a, dev: da, underlay: ua },
    { ns: b, dev: db, underlay: ub },
  ];
}

/** N namespaces on one underlay bridge (in its own namespace), underlay 198.18.0.(i+1)/24. */
export async function bridgedHosts(scope: HostScope, n: number): Promise<Host[]> {
  const t = uniqueTag();
  const u = await scope.netns(`u${t}`);
  await scope.bridge('br0', u);
  const hosts: Host[] = [];
  for (let i = 0; i < n; i++) {
    const ns = await scope.netns(`h${i}${t}`);
    const dev = `e${i}${t}`;
    const port = `p${i}${t}`;
    await scope.veth({ name: dev, netns: ns }, { name: port, netns: u });
    await scope.enslave(port, 'br0', u);
    await scope.addr(ns, dev, `198.18.0.${i + 1}/24`);
    hosts.push({ ns, dev, underlay: `198.18.0.${i + 1}` });
  }
  return hosts;
}

/** A running `vxtap up`. */
export interface RunningVtep {
  child: ChildProcess;
  name: string;
  sock: string;
  stderr: () => string;
  status: () => Promise<VtepStatus>;
  stop: () => Promise<void>;
}

/** Start `vxtap up` in `host.ns` with extra args; resolves when its stats socket answers. */
export async function startVxtap(scope: HostScope, host: Host, args: string[], name = `vt${uniqueTag()}`): Promise<RunningVtep> {
  const sock = `/run/vxtap/test-${name}.sock`;
  const child = scope.spawn(['node', CLI, 'up', '--name', name, '--local', host.underlay, '--stats-socket', sock, ...args], { netns: host.ns });
  let err = '';
  child.stderr?.on('data', (d: Buffer | string) => (err += d.toString()));
  child.stdout?.resume();
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vxtap up exited ${child.exitCode}: ${err}`);
    if (existsSync(sock)) {
      try {
        await fetchStatus(sock);
        break;
      } catch {
        /* not yet */
      }
    }
    if (Date.now() > deadline) throw new Error(`vxtap up did not become ready: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    name,
    sock,
    stderr: () => err,
    status: async () => JSON.parse(await fetchStatus(sock)) as VtepStatus,
    stop: () => stop(child),
  };
}

/** A kernel VXLAN device in `host.ns` pointing at `remote`, with an overlay address. */
export async function kernelVxlan(host: Host, opts: { name: string; vni: number; port: number; remote: string; address: string; mtu?: number }): Promise<void> {
  await run(['ip', 'link', 'add', opts.name, 'type', 'vxlan', 'id', String(opts.vni), 'dstport', String(opts.port), 'local', host.underlay, 'remote', opts.remote, 'dev', host.dev], {
    netns: host.ns,
  });
  if (opts.mtu) await run(['ip', 'link', 'set', opts.name, 'mtu', String(opts.mtu)], { netns: host.ns });
  await run(['ip', 'addr', 'add', opts.address, 'dev', opts.name], { netns: host.ns });
  await run(['ip', 'link', 'set', opts.name, 'up'], { netns: host.ns });
}

/** Ping: returns the packet loss (0..1) and the avg RTT in ms. Bounded by count and deadline. */
export async function ping(ns: string, target: string, count = 5, intervalS = 0.2, extra: string[] = []): Promise<{ loss: number; avgMs: number; out: string }> {
  const r = await run(['ping', '-n', '-q', '-c', String(count), '-i', String(intervalS), '-w', String(Math.ceil(count * intervalS) + 5), ...extra, target], {
    netns: ns,
    allowFail: true,
  });
  const loss = /([\d.]+)% packet loss/.exec(r.stdout);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return { loss: loss ? Number(loss[1]) / 100 : 1, avgMs: rtt ? Number(rtt[1]) : NaN, out: r.stdout };
}

/** Transfer `bytes` over TCP from `from.ns` to `to.ns`:`addr`; returns both sides' byte counts and hashes. */
export async function tcpTransfer(scope: HostScope, fromNs: string, toNs: string, addr: string, bytes: number, port = 5001, cpu?: number) {
  // cpu: both ends pinned there (taskset), so the kernel sends and receives on that CPU
  const pin = cpu === undefined ? [] : ['taskset', '-c', String(cpu)];
  const server = scope.spawn([...pin, 'node', TRANSFER, 'server', addr, String(port)], { netns: toNs });
  let serverOut = '';
  server.stdout?.on('data', (d: Buffer | string) => (serverOut += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('transfer server did not start')), 10_000);
    server.stderr?.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const client = await output([...pin, 'node', TRANSFER, 'client', addr, String(port), String(bytes)], { netns: fromNs, timeoutMs: 120_000 });
  const deadline = Date.now() + 10_000;
  while (!serverOut.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { sent: JSON.parse(client) as { bytes: number; sha256: string }, received: JSON.parse(serverOut) as { bytes: number; sha256: string } };
}

export { HostScope };
