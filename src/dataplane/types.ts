/**
 * The contract between a running VTEP (the dataplane supervisor) and the control
 * planes that feed it (static peers from the command line, flannel-style leases
 * from etcd). Control planes never touch the packet path: they call these methods
 * on the main thread, and the supervisor forwards the change to the workers as a
 * message; workers apply it between two batches.
 */

/** A remote VTEP, identified by its underlay address. */
export interface PeerEntry {
  /** Underlay IPv4 or IPv6 address. */
  address: string;
  /**
   * Receives copies of broadcast, multicast and unknown-unicast frames
   * (head-end replication, like an all-zero FDB entry of kernel VXLAN).
   */
  flood: boolean;
}

/** A static forwarding entry: inner MAC -> remote VTEP. */
export interface StaticFdbEntry {
  /** 'aa:bb:cc:dd:ee:ff' */
  mac: string;
  /** Underlay address of the remote VTEP; must be one of the peers. */
  peer: string;
}

/** What a control plane may change on a running VTEP. */
export interface DataplaneControl {
  /** The overlay device (TAP) name. */
  readonly tapName: string;
  /** The TAP's MAC ('aa:bb:...'): flannel's VtepMAC. */
  readonly tapMac: string;
  /** The TAP's MTU. */
  readonly mtu: number;
  /**
   * Replace the set of remote VTEPs. Packets from other addresses are dropped and
   * counted (peers learned with --accept-unknown-peers stay until they age out).
   * Throws ConfigError beyond MAX_PEERS peers.
   */
  setPeers(peers: PeerEntry[]): void;
  /** Replace the static forwarding entries (learned entries are kept). */
  setStaticFdb(entries: StaticFdbEntry[]): void;
}
