/**
 * The VTEP supervisor (main thread): creates the TAP queues and sockets, starts
 * one worker per queue, owns the forwarding table and the peer table, feeds
 * control-plane changes to the workers, ages learned entries, serves statistics,
 * and tears everything down. If any step of start-up fails, everything created
 * so far is closed again (closing the last TAP fd removes the device).
 */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { createServer, type Server } from 'node:http';
import { mkdirSync, unlinkSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { native, TNL_VNET_HDR_LEN, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, UPLINK_OFFLOADS, VNET_HDR_LEN } from '../native/index.js';
import { type VtepConfig, ConfigError, statsSocketPath } from '../config.js';
import { ENCAP_OVERHEAD_V4, ENCAP_OVERHEAD_V6 } from '../wire/vxlan.js';
import { addrRecord, addressFamily, normalizeAddress, recordAddress } from '../wire/addr.js';
import { formatMac, parseMac, randomMac } from '../wire/mac.js';
import { Fdb, macParts, macKey } from './fdb.js';
import { newCounterBlock, readCounters, sumCounters, dropsByReason, renderPrometheus, stageCosts, type CounterSnapshot, type StageCosts } from './stats.js';
import type { PeerInfo, WorkerEvent } from './engine.js';
import { CTL_SEQ, CTL_STOP, type WorkerInit } from './worker.js';
import type { DataplaneControl, PeerEntry, StaticFdbEntry } from './types.js';
import { deviceOfAddress, addAddress, setTxQueueLen, linkKind, addQuietBridgePort, setGsoMaxSize, nextHopMacs, steerVxlan, steeringTable, unsteerVxlan } from '../host/iproute.js';
import { haveCommand } from '../host/exec.js';

/** Status of a running VTEP, as `vxtap stats` prints it. */
export interface VtepStatus {
  name: string;
  vni: number;
  port: number;
  local: string;
  mtu: number;
  mac: string;
  workers: number;
  offload: boolean;
  /** Uplink transmit (--uplink-bridge): the bridge, the TAP port, and each peer's next-hop MAC once known. */
  uplink?: { bridge: string; port: string; receive: boolean };
  uptimeSeconds: number;
  peers: { address: string; index: number; flood: boolean; nextHopMac?: string }[];
  fdb: { mac: string; peer: string; static: boolean; ageSeconds: number }[];
  total: CounterSnapshot;
  drops: Record<string, number>;
  /** ns per wire packet in each stage (both directions). */
  stages: StageCosts;
  /** The control plane's own state (etcd mode: subnet, lease, etcd reachability, counters), else absent. */
  control?: unknown;
  perWorker: CounterSnapshot[];
}

interface PeerState {
  index: number;
  address: string;
  flood: boolean;
  record: Uint8Array;
  /** learned from an unknown source (acceptUnknownPeers) rather than configured */
  learned: boolean;
  /** With an uplink: the underlay next hop's MAC, once the kernel resolved it. */
  mac?: string;
}

interface WorkerSlot {
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  wakeFd: number;
  counters: SharedArrayBuffer;
  exited: Promise<void>;
}

/** Log to stderr (human output). */
function log(msg: string): void {
  process.stderr.write(`vxtap: ${msg}\n`);
}

/** A running VTEP. */
export class Vtep implements DataplaneControl {
  readonly tapName: string;
  readonly tapMac: string;
  readonly mtu: number;
  private readonly fdb = new Fdb(4096);
  private readonly peers = new Map<string, PeerState>();
  private nextPeerIndex = 0;
  private readonly workers: WorkerSlot[] = [];
  private readonly fds: number[] = [];
  private server: Server | undefined;
  private metricsServer: Server | undefined;
  private ageTimer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private stopping: Promise<void> | undefined;
  private staticKeys = new Set<string>();
  /** Resolves when a worker fails (the CLI then shuts down). */
  readonly failed: Promise<Error>;
  private fail!: (err: Error) => void;

  private constructor(readonly config: VtepConfig, tapName: string, tapMac: string, mtu: number) {
    this.tapName = tapName;
    this.tapMac = tapMac;
    this.mtu = mtu;
    this.failed = new Promise((resolve) => (this.fail = resolve));
  }

  /** Whether the workers run the offload path. */
  offload = false;
  /** Uplink transmit: bridge and TAP port, when configured and in use. */
  uplink: { bridge: string; port: string; receive: boolean } | undefined;
  private nftTable: string | undefined;
  private uplinkTimer: NodeJS.Timeout | undefined;
  private refreshing = false;

  /** State of the control plane driving this VTEP (etcd mode), shown by `vxtap stats`. */
  controlStatus: (() => unknown) | undefined;

  /**
   * Start a VTEP for a validated configuration. On failure nothing stays behind.
   */
  static async start(config: VtepConfig): Promise<Vtep> {
    const addon = native();
    const family = addressFamily(config.local);
    const underlay = await deviceOfAddress(config.local);
    if (!underlay) throw new ConfigError('local', `'${config.local}' is not assigned to any interface in this network namespace`);
    const overhead = family === 4 ? ENCAP_OVERHEAD_V4 : ENCAP_OVERHEAD_V6;
    const mtu = config.mtu ?? underlay.mtu - overhead;
    if (mtu < 68) throw new ConfigError('mtu', `underlay ${underlay.dev} MTU ${underlay.mtu} leaves ${mtu} bytes inside the tunnel`);
    const sock = statsSocketPath(config);
    if (existsSync(sock)) {
      if (await socketAlive(sock)) throw new ConfigError('name', `an instance is already serving ${sock}`);
      unlinkSync(sock);
    }
    const macBytes = config.mac ? parseMac(config.mac) : randomMac();
    const fds: number[] = [];
    let vtep: Vtep | undefined;
    let nftTable: string | undefined; // until the Vtep owns it
    try {
      const multiQueue = config.workers > 1;
      // Offload needs every GSO segment (inner MTU + 14 + VXLAN 8 + outer 28/48) to fit the underlay MTU.
      let offload = config.offload;
      if (offload && mtu + overhead > underlay.mtu) {
        log(`offload off: TAP MTU ${mtu} + ${overhead} exceeds underlay MTU ${underlay.mtu} (UDP GSO cannot fragment)`);
        offload = false;
      }
      let bridgeMac: Uint8Array | undefined;
      if (config.uplinkBridge) {
        // checked before anything is created: a bad uplink changes nothing on the host
        const kind = await linkKind(config.uplinkBridge);
        if (kind === undefined) throw new ConfigError('uplinkBridge', `no interface '${config.uplinkBridge}' in this network namespace`);
        if (kind !== 'bridge') throw new ConfigError('uplinkBridge', `'${config.uplinkBridge}' is a ${kind || 'plain'} device, not a Linux bridge`);
        if (underlay.dev !== config.uplinkBridge) {
          throw new ConfigError('uplinkBridge', `local address ${config.local} is on ${underlay.dev}, not on bridge ${config.uplinkBridge}`);
        }
        if (!offload) log('uplink off: it needs the offload path');
        else bridgeMac = addon.ifGetMac(config.uplinkBridge);
      }
      // a steering table left by a killed uplink run would send our VXLAN to a TAP that is gone
      if (!bridgeMac && (await haveCommand('nft'))) await unsteerVxlan(steeringTable(config.name));
      const queues: number[] = [];
      let tapName = config.name;
      for (let q = 0; q < config.workers; q++) {
        const h = addon.tapOpen(tapName, { multiQueue, vnetHdr: offload });
        fds.push(h.fd);
        queues.push(h.fd);
        tapName = h.name;
      }
      if (offload) {
        try {
          for (const fd of queues) addon.tapSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
        } catch (err) {
          // vnet_hdr stays on (the queues are open); without TSO frames are plain, still correct
          log(`TAP TSO refused (${(err as Error).message}); frames stay MTU-sized`);
        }
      }
      addon.ifSetMtu(tapName, mtu);
      addon.ifSetMac(tapName, macBytes);
      await setTxQueueLen(tapName, config.txQueueLen);
      addon.ifSetUp(tapName, true);
      if (config.address) await addAddress(tapName, config.address);
      const uplinkQueues: number[] = [];
      let uplinkName: string | undefined;
      if (bridgeMac) {
        // outer IPv4 length = 36 + inner frame: keep TSO frames at or below 65000 bytes
        await setGsoMaxSize(tapName, 65000);
        let name = `${tapName.slice(0, 14)}u`;
        for (let q = 0; q < config.workers; q++) {
          const h = addon.tapOpen(name, { multiQueue, vnetHdr: true });
          fds.push(h.fd);
          uplinkQueues.push(h.fd);
          name = h.name;
          addon.tapSetVnetHdrSize(h.fd, TNL_VNET_HDR_LEN);
          // the kernel's UDP-tunnel GSO on TAP (6.17+): what it hands us, and the proof
          // that it takes our tunnel-GSO writes (older kernels refuse the flag)
          try {
            addon.tapSetOffload(h.fd, UPLINK_OFFLOADS);
          } catch (err) {
            throw new ConfigError('uplinkBridge', `this kernel has no UDP-tunnel GSO on TAP devices (Linux 6.17+): ${(err as Error).message}`);
          }
        }
        uplinkName = name;
        await addQuietBridgePort(config.uplinkBridge!, name, underlay.mtu);
        await setTxQueueLen(name, config.txQueueLen);
        // receive too: VXLAN for us steered from the bridge's ingress to the uplink
        // TAP, which then hands over whole UDP-tunnel GSO super-frames
        if (await haveCommand('nft')) {
          try {
            nftTable = await steerVxlan(tapName, config.uplinkBridge!, config.local, config.port, name);
          } catch (err) {
            log(`uplink receive off (${(err as Error).message}); receiving on the UDP socket`);
          }
        } else log('uplink receive off: no nft command (apt install nftables); receiving on the UDP socket');
      }

      const bind = config.local;
      const pmtu = config.df === 'set' || config.df === 'inherit' ? 'do' : 'dont';
      vtep = new Vtep(config, tapName, formatMac(macBytes), mtu);
      vtep.offload = offload;
      vtep.fds.push(...fds);
      fds.length = 0;
      for (const p of config.peers) vtep.addPeer(typeof p === 'string' ? p : p.address, typeof p === 'string' ? true : p.flood ?? true, false);
      vtep.applyStaticFdb(config.fdb);
      if (uplinkName) {
        vtep.uplink = { bridge: config.uplinkBridge!, port: uplinkName, receive: nftTable !== undefined };
        vtep.nftTable = nftTable;
        nftTable = undefined;
        await vtep.refreshNextHops();
        vtep.uplinkTimer = setInterval(() => void vtep!.refreshNextHops(), 1000).unref();
        log(`uplink: ${uplinkName} on bridge ${config.uplinkBridge} carries whole TSO frames (UDP-tunnel GSO)${vtep.uplink.receive ? ' both ways' : ' out'}`);
      }

      const maxUnfragmentedPayload = underlay.mtu - (family === 4 ? 28 : 48);
      for (let w = 0; w < config.workers; w++) {
        const rxFd = vtep.open(() => addon.udpOpen({ address: bind, port: config.port, reusePort: true, rcvbuf: 8 << 20, sndbuf: 4 << 20, gro: offload }), 'port');
        const txFds: number[] = [];
        const txFdsNoDf: number[] = [];
        for (let p = config.srcPortMin; p <= config.srcPortMax; p++) {
          txFds.push(vtep.open(() => addon.udpOpen({ address: bind, port: p, reusePort: true, sndbuf: 4 << 20, pmtu }), 'srcPortMin'));
          if (config.df === 'inherit') {
            txFdsNoDf.push(vtep.open(() => addon.udpOpen({ address: bind, port: p, reusePort: true, sndbuf: 4 << 20, pmtu: 'dont' }), 'srcPortMin'));
          }
        }
        const wakeFd = vtep.open(() => addon.eventfdOpen(), 'workers');
        vtep.startWorker({
          index: w,
          tapFd: queues[w],
          rxFd,
          txFds,
          txFdsNoDf,
          wakeFd,
          vni: config.vni,
          batchSize: config.batchSize,
          // a TSO read ignores the TAP MTU, and the MTU may be raised while running
          // (ip link set ... mtu): slots take any frame up to 64 KiB + headers
          tapSlotLen: (offload ? VNET_HDR_LEN : 0) + 65535 + 18,
          udpSlotLen: 65535,
          offload,
          maxGsoBytes: 65507, // UDP GSO payload limit (IPv4 bound; IPv6 could take 65527)
          learning: config.learning,
          acceptUnknownPeers: config.acceptUnknownPeers,
          ownMac: macBytes,
          maxUnfragmentedPayload,
          mtu,
          busyPollUs: config.busyPollUs,
          vxlanPort: config.port,
          uplinkRx: vtep.uplink?.receive === true,
          ...(bridgeMac && uplinkQueues.length
            ? {
                uplinkFd: uplinkQueues[w],
                uplink: {
                  srcMac: bridgeMac,
                  srcIp: Uint8Array.from(config.local.split('.').map(Number)),
                  srcPortMin: config.srcPortMin,
                  maxOuterIp: underlay.mtu,
                  dfMode: config.df === 'set' ? 1 : config.df === 'inherit' ? 2 : 0,
                },
              }
            : {}),
        });
      }
      vtep.ageTimer = setInterval(() => vtep!.fdb.age(config.ageingSeconds), Math.min(10_000, config.ageingSeconds * 250)).unref();
      await vtep.serveStats(sock);
      if (config.metrics) await vtep.serveMetrics(config.metrics);
      return vtep;
    } catch (err) {
      if (nftTable) await unsteerVxlan(nftTable);
      for (const fd of fds) closeQuietly(fd);
      if (vtep) await vtep.stop();
      throw err;
    }
  }

  private open(fn: () => number, field: string): number {
    try {
      const fd = fn();
      this.fds.push(fd);
      return fd;
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'EADDRINUSE') {
        throw new ConfigError(field, `${e.message}: a port of the VTEP is in use by another socket`);
      }
      throw err;
    }
  }

  private startWorker(partial: Omit<WorkerInit, 'fdb' | 'counters' | 'control' | 'port' | 'peers'>): void {
    const { port1, port2 } = new MessageChannel();
    const counters = newCounterBlock();
    const controlBuf = new SharedArrayBuffer(8);
    const init: WorkerInit = { ...partial, fdb: this.fdb.buffer, counters, control: controlBuf, port: port2, peers: this.peerInfos() };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: [port2] });
    const slot: WorkerSlot = {
      worker,
      port: port1,
      control: new Int32Array(controlBuf),
      wakeFd: partial.wakeFd,
      counters,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
    };
    worker.on('message', (ev: WorkerEvent | { type: 'fatal'; message: string; code?: string } | { type: 'stopped' }) => {
      if (ev.type === 'learn') this.learn(ev.hi, ev.lo, ev.peer);
      else if (ev.type === 'unknown-peer') this.addPeer(recordAddress(ev.record, 0), false, true);
      else if (ev.type === 'fatal') {
        const err = Object.assign(new Error(`worker ${partial.index}: ${ev.message}`), { code: ev.code });
        log(err.message);
        this.fail(err);
      }
    });
    worker.on('error', (err) => {
      log(`worker ${partial.index} crashed: ${err.message}`);
      this.fail(err);
    });
    this.workers.push(slot);
  }

  private peerInfos(): PeerInfo[] {
    return [...this.peers.values()].map((p) => ({ index: p.index, record: p.record, flood: p.flood, ...(p.mac ? { mac: parseMac(p.mac) } : {}) }));
  }

  /**
   * Uplink: look up each peer's next-hop MAC in the kernel's neighbour table and
   * tell the workers when one appears, changes or goes. Until then a peer's frames
   * take the socket path, which also makes the kernel resolve it.
   */
  private async refreshNextHops(): Promise<void> {
    if (!this.uplink || this.refreshing || this.stopping) return;
    this.refreshing = true;
    try {
      const peers = [...this.peers.values()];
      const macs = await nextHopMacs(this.uplink.bridge, peers.filter((p) => addressFamily(p.address) === 4).map((p) => p.address));
      let changed = false;
      for (const p of peers) {
        const mac = macs.get(p.address);
        if (mac !== p.mac) {
          p.mac = mac;
          changed = true;
        }
      }
      if (changed && !this.stopping) this.broadcastPeers();
    } catch (err) {
      log(`uplink: neighbour lookup failed (${(err as Error).message}); peers keep their last next hops`);
    } finally {
      this.refreshing = false;
    }
  }

  private broadcastPeers(): void {
    const peers = this.peerInfos();
    for (const w of this.workers) {
      w.port.postMessage({ type: 'peers', peers });
      Atomics.add(w.control, CTL_SEQ, 1);
      native().eventfdSignal(w.wakeFd);
    }
  }

  private addPeer(address: string, flood: boolean, learned: boolean): PeerState {
    const norm = normalizeAddress(address);
    let p = this.peers.get(norm);
    if (!p) {
      p = { index: this.nextPeerIndex++, address: norm, flood, record: addrRecord(norm, this.config.port), learned };
      this.peers.set(norm, p);
      if (learned) log(`accepted unknown peer ${norm}`);
      this.broadcastPeers();
    }
    return p;
  }

  private learn(hi: number, lo: number, peer: number): void {
    let live = false;
    for (const p of this.peers.values()) if (p.index === peer) live = true; // peer removed since the worker saw it?
    if (!live) return;
    if (!this.fdb.set(hi, lo, peer, false)) log(`forwarding table full (${this.fdb.capacity}); not learning ${macKey(hi, lo)}`);
  }

  /** Replace the set of remote VTEPs (DataplaneControl). */
  setPeers(peers: PeerEntry[]): void {
    const want = new Map(peers.map((p) => [normalizeAddress(p.address), p.flood]));
    let changed = false;
    for (const [addr, p] of this.peers) {
      if (!want.has(addr)) {
        this.peers.delete(addr);
        this.fdb.deleteWhere((peer) => peer === p.index);
        changed = true;
      }
    }
    for (const [addr, flood] of want) {
      const p = this.peers.get(addr);
      if (!p) {
        this.peers.set(addr, { index: this.nextPeerIndex++, address: addr, flood, record: addrRecord(addr, this.config.port), learned: false });
        changed = true;
      } else if (p.flood !== flood || p.learned) {
        p.flood = flood;
        p.learned = false;
        changed = true;
      }
    }
    if (changed) this.broadcastPeers();
  }

  /** Replace the static forwarding entries (DataplaneControl). */
  setStaticFdb(entries: StaticFdbEntry[]): void {
    this.applyStaticFdb(entries);
  }

  private applyStaticFdb(entries: StaticFdbEntry[]): void {
    const next = new Set<string>();
    for (const e of entries) {
      const p = this.peers.get(normalizeAddress(e.peer));
      if (!p) throw new ConfigError('fdb', `peer ${e.peer} of ${e.mac} is not a peer`);
      const [hi, lo] = macParts(e.mac.toLowerCase());
      this.fdb.set(hi, lo, p.index, true);
      next.add(macKey(hi, lo));
    }
    for (const key of this.staticKeys) {
      if (!next.has(key)) {
        const [hi, lo] = macParts(key);
        this.fdb.delete(hi, lo);
      }
    }
    this.staticKeys = next;
  }

  /** Counters, tables and settings. */
  status(): VtepStatus {
    const perWorker = this.workers.map((w) => readCounters(w.counters));
    const total = sumCounters(perWorker);
    const byIndex = new Map([...this.peers.values()].map((p) => [p.index, p.address]));
    return {
      name: this.tapName,
      vni: this.config.vni,
      port: this.config.port,
      local: this.config.local,
      mtu: this.mtu,
      mac: this.tapMac,
      workers: this.workers.length,
      offload: this.offload,
      ...(this.uplink ? { uplink: this.uplink } : {}),
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      peers: [...this.peers.values()].map((p) => ({ address: p.address, index: p.index, flood: p.flood, ...(this.uplink && p.mac ? { nextHopMac: p.mac } : {}) })),
      fdb: this.fdb.entries().map((e) => ({ mac: e.mac, peer: byIndex.get(e.peer) ?? `#${e.peer}`, static: e.static, ageSeconds: e.ageSeconds })),
      total,
      drops: dropsByReason(total),
      stages: stageCosts(total),
      ...(this.controlStatus ? { control: this.controlStatus() } : {}),
      perWorker,
    };
  }

  private metrics(): string {
    return renderPrometheus(this.tapName, this.workers.map((w) => readCounters(w.counters)), {
      fdb_entries: this.fdb.size,
      peers: this.peers.size,
      workers: this.workers.length,
    });
  }

  private handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/stats' || url === '/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.status()));
    } else if (url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(this.metrics());
    } else if (url === '/fdb') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.status().fdb));
    } else {
      res.writeHead(404);
      res.end();
    }
  };

  private async serveStats(sock: string): Promise<void> {
    mkdirSync(path.dirname(sock), { recursive: true });
    const server = createServer(this.handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sock, () => resolve());
    });
    this.server = server;
  }

  private async serveMetrics(hostPort: string): Promise<void> {
    const i = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(i + 1));
    const server = createServer(this.handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ConfigError('metrics', `cannot listen on ${hostPort}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.metricsServer = server;
  }

  /** Stop the workers, close every fd (the TAP disappears), remove the stats socket. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.ageTimer) clearInterval(this.ageTimer);
      if (this.uplinkTimer) clearInterval(this.uplinkTimer);
      for (const w of this.workers) {
        Atomics.store(w.control, CTL_STOP, 1);
        try {
          native().eventfdSignal(w.wakeFd);
        } catch {
          /* closed */
        }
      }
      // steering off before the uplink TAP goes, so no VXLAN is sent into the void
      if (this.nftTable) await unsteerVxlan(this.nftTable);
      await Promise.all(
        this.workers.map((w) =>
          Promise.race([w.exited, new Promise<void>((r) => setTimeout(r, 3000))]).then(() => w.worker.terminate()),
        ),
      );
      for (const fd of this.fds.splice(0)) closeQuietly(fd);
      const sock = statsSocketPath(this.config);
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
      await new Promise<void>((r) => (this.metricsServer ? this.metricsServer.close(() => r()) : r()));
      try {
        unlinkSync(sock);
      } catch {
        /* gone */
      }
    })();
    return this.stopping;
  }
}

function closeQuietly(fd: number): void {
  try {
    native().close(fd);
  } catch {
    /* already closed */
  }
}

function socketAlive(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Fetch a running instance's status over its stats socket. */
export async function fetchStatus(sock: string, what: 'stats' | 'metrics' | 'fdb' = 'stats'): Promise<string> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: `/${what}`, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`timeout talking to ${sock}`)));
    req.end();
  });
}


