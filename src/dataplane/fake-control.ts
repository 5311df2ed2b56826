/**
 * A fake DataplaneControl (types.ts) for pure control-plane tests, beside the
 * interface it fakes: records the peers and static FDB it is given, in order,
 * and refuses a static entry whose peer is not a peer, as the real VTEP does.
 */
import type { DataplaneControl, PeerEntry, StaticFdbEntry } from './types.js';

export class FakeDataplane implements DataplaneControl {
  peers: PeerEntry[] = [];
  fdb: StaticFdbEntry[] = [];
  stopped = false;
  readonly history: { op: 'peers' | 'fdb'; at: number }[] = [];

  constructor(
    readonly tapName = 'vxefake0',
    readonly tapMac = '02:00:00:00:00:01',
    readonly mtu = 1450,
  ) {}

  setPeers(peers: PeerEntry[]): void {
    this.peers = peers.map((p) => ({ ...p }));
    this.history.push({ op: 'peers', at: Date.now() });
  }

  setStaticFdb(entries: StaticFdbEntry[]): void {
    const peerSet = new Set(this.peers.map((p) => p.address));
    for (const e of entries) if (!peerSet.has(e.peer)) throw new Error(`FDB entry ${e.mac} -> ${e.peer}: not a peer`);
    this.fdb = entries.map((e) => ({ ...e }));
    this.history.push({ op: 'fdb', at: Date.now() });
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}
