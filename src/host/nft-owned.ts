/**
 * nftables tables that live exactly as long as vxtap does.
 *
 * A plain table outlives a crashed vxtap: after SIGKILL the uplink's steering
 * table keeps `fwd to` the uplink TAP's old ifindex (nft stores the index, not
 * the name: `nft list` shows `fwd to 4` once the device is gone), and the
 * kernel drops every packet forwarded to a missing device, so the host stops
 * receiving large VXLAN datagrams until someone deletes the table. nftables'
 * `owner` table flag (Linux 5.12, nftables 0.9.9) ties a table to the netlink
 * socket that created it: the kernel removes the table when that socket closes,
 * and no other process may change or delete it. vxtap keeps one `nft -i`
 * process per table with its stdin on a pipe; when vxtap exits for any reason,
 * SIGKILL included, the pipe closes, nft reads EOF and exits, and the kernel
 * drops the table with it. Nothing is left to clean up after a crash.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { inNetns } from './exec.js';

/** A table held by an `nft -i` child; `close()` removes it. */
export class OwnedNftTable {
  private exited: Promise<void>;
  private constructor(
    readonly table: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /** False once the holding nft process is gone (the table with it). */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the holder exits (the table is gone then). */
  get gone(): Promise<void> {
    return this.exited;
  }

  /**
   * Create `table netdev NAME { flags owner; }` and run `commands` (one nft
   * command per line, each naming the table) in the same nft process. Resolves
   * once `list table` shows the table, rejects with nft's error otherwise (and
   * nothing stays behind).
   */
  static async create(family: string, table: string, commands: string[], opts: { netns?: string; timeoutMs?: number } = {}): Promise<OwnedNftTable> {
    const argv = inNetns(opts.netns, ['nft', '-i']);
    // own process group: a terminal's SIGINT is for vxtap, which then closes stdin
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.unref();
    (child.stdout as NodeJS.ReadableStream & { unref?: () => void }).unref?.();
    (child.stderr as NodeJS.ReadableStream & { unref?: () => void }).unref?.();
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.on('error', () => undefined); // EPIPE when nft died; reported below
    const holder = new OwnedNftTable(table, child);
    const lines = [`add table ${family} ${table} { flags owner; }`, ...commands, `list table ${family} ${table}`];
    child.stdin.write(lines.join('\n') + '\n');
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    // the listing ends with the table's closing brace at column 0
    while (!/^}\s*$/m.test(out) && !/Error:/.test(err) && holder.alive && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (/^}\s*$/m.test(out) && !/Error:/.test(err)) return holder;
    await holder.close();
    const why = err.trim() || (Date.now() >= deadline ? 'nft did not answer in time' : `nft exited (${String(child.exitCode ?? child.signalCode)})`);
    throw new Error(`nft: ${why.split('\n')[0]}`);
  }

  /** Remove the table: close nft's stdin, and kill it if it does not exit. Idempotent. */
  async close(): Promise<void> {
    if (!this.alive) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
