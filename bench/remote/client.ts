/**
 * Controller side of the agent protocol: `AgentClient` sends requests over an
 * agent's stdio (an ssh child, or a local `vxtap agent --stdio` child) and
 * matches responses; `RemoteHost` is the bench's `BenchHost` on top of it.
 *
 * Keep-alive: the agent cleans up when no request arrived within its lease.
 * The controller sends `lease` only when no request is in flight on any host
 * of the run (so never during a measurement); before a request that may take
 * longer than the lease (a long iperf3 trial), the other hosts' leases are
 * extended first.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { CommandError, type RunResult } from '../../src/host/exec.js';
import type { BenchHost, BenchProcess, ExecOptions, HostCounters } from '../host.js';
import { LineSplitter, parseFrame, type CountersResult, type EventFrame, type HelloResult, type Request } from './protocol.js';

/** An agent that went away: every pending and later request fails with this. */
export class AgentGoneError extends Error {
  readonly code = 'EAGENTGONE';
}

/** Requests and responses over one agent's stdio. */
export class AgentClient {
  private readonly splitter = new LineSplitter();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<number, (e: EventFrame) => void>();
  private readonly early = new Map<number, EventFrame[]>();
  private nextId = 1;
  private stderrTail = '';
  /** Why the agent is gone, once it is. */
  gone: string | null = null;
  lastSentAt = Date.now();
  /** The other agents of the run (for keep-alive decisions). */
  group: AgentClient[] = [];

  constructor(
    readonly label: string,
    readonly dest: string,
    private readonly child: ChildProcessByStdio<Writable, Readable, Readable>,
  ) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.onData(d));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-2000);
    });
    child.stdin.on('error', () => undefined);
    child.once('exit', (code, signal) =>
      this.fail(`connection lost (${this.transportName()} exited ${String(signal ?? code)})${this.stderrTail.trim() ? `: ${this.stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''}`),
    );
    child.once('error', (e) => this.fail(`cannot start ${this.transportName()}: ${e.message}`));
  }

  private transportName(): string {
    return this.dest === 'local' ? 'local agent' : 'ssh';
  }

  /** Pid of the transport process (ssh, or the local agent). */
  get transportPid(): number {
    return this.child.pid ?? -1;
  }

  /** True while a request waits for its answer. */
  busy(): boolean {
    return this.pending.size > 0;
  }

  private fail(why: string): void {
    if (this.gone) return;
    this.gone = `host ${this.label} (${this.dest}): ${why}`;
    for (const p of this.pending.values()) p.reject(new AgentGoneError(this.gone));
    this.pending.clear();
  }

  private onData(chunk: string): void {
    let lines: string[];
    try {
      lines = this.splitter.push(chunk);
    } catch (err) {
      this.fail((err as Error).message);
      this.child.kill('SIGTERM');
      return;
    }
    for (const line of lines) {
      let f: Record<string, unknown>;
      try {
        f = parseFrame(line);
      } catch {
        continue; // not ours (e.g. a motd line): ignore
      }
      if (typeof f.event === 'string') {
        const ev = f as unknown as EventFrame;
        const l = this.listeners.get(ev.handle);
        if (l) l(ev);
        else this.early.set(ev.handle, [...(this.early.get(ev.handle) ?? []), ev]);
        continue;
      }
      const p = this.pending.get(f.id as number);
      if (!p) continue;
      this.pending.delete(f.id as number);
      if (f.ok) p.resolve(f.result);
      else {
        const e = f.error as { message: string; code?: string };
        p.reject(Object.assign(new Error(`host ${this.label} (${this.dest}): ${e.message}`), { code: e.code }));
      }
    }
  }

  /** Send a request; resolves to its result. */
  request<T>(req: Request): Promise<T> {
    if (this.gone) return Promise.reject(new AgentGoneError(this.gone));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.lastSentAt = Date.now();
      this.child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** Receive events of a spawned process. */
  listen(handle: number, fn: (e: EventFrame) => void): void {
    this.listeners.set(handle, fn);
    for (const e of this.early.get(handle) ?? []) fn(e);
    this.early.delete(handle);
  }

  unlisten(handle: number): void {
    this.listeners.delete(handle);
  }

  /** Close stdin (the agent then cleans up and exits) and wait for the transport to end. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGTERM'), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  /** Kill the transport at once (tests; a stuck host). */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** Keep every agent of a run alive while nothing is in flight (see the design note). */
export function startKeepAlive(clients: AgentClient[], leaseMs: number): () => void {
  for (const c of clients) c.group = clients;
  const timer = setInterval(() => {
    if (clients.some((c) => c.busy())) return;
    for (const c of clients) {
      if (!c.gone && Date.now() - c.lastSentAt > leaseMs / 3) c.request({ op: 'lease', ms: leaseMs }).catch(() => undefined);
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** A process started by an agent. */
class RemoteProcess implements BenchProcess {
  private handle = -1;
  private pidValue = -1;
  private out = '';
  private err = '';
  private finished = false;
  private pulling = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private resolveExit!: (v: { code: number | null; signal: NodeJS.Signals | null }) => void;
  readonly started: Promise<void>;

  constructor(
    private readonly host: RemoteHost,
    readonly argv: string[],
    wire: string[],
    env: Record<string, string> | undefined,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
    this.started = host.client.request<{ handle: number; pid: number }>({ op: 'spawn', argv: wire, env }).then(
      ({ handle, pid }) => {
        this.handle = handle;
        this.pidValue = pid;
        host.client.listen(handle, (e) => {
          this.out = e.stdout;
          this.err = e.stderr;
          this.finish(e.code, e.signal as NodeJS.Signals | null);
        });
      },
      (e: unknown) => {
        this.err += (e as Error).message;
        this.finish(127, null);
      },
    );
    // A host that goes away ends its processes as far as the bench is concerned.
    void host.gonePromise.then((why) => {
      this.err += `\n${why}`;
      this.finish(null, 'SIGKILL');
    });
  }

  /** The agent's handle of the process (-1 until it started). */
  get agentHandle(): number {
    return this.handle;
  }

  /** New output that came with another reply (counters). */
  append(o: { stdout: string; stderr: string }): void {
    if (this.finished) return;
    this.out += o.stdout;
    this.err += o.stderr;
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.finished) return;
    this.finished = true;
    if (this.handle >= 0) this.host.client.unlisten(this.handle);
    this.host.forget(this);
    this.resolveExit({ code, signal });
  }

  get pid(): number {
    return this.pidValue;
  }

  /**
   * Output is pulled, not pushed: reading it asks the agent for what is new
   * (one request in flight at a time); the caller polls, as it does for a
   * local process, and sees the new text on a later read.
   */
  private pull(): void {
    if (this.pulling || this.finished || this.handle < 0) return;
    this.pulling = true;
    this.host.client.request<{ stdout: string; stderr: string }>({ op: 'output', handle: this.handle }).then(
      (r) => {
        this.pulling = false;
        if (this.finished) return; // the exit event carried everything
        this.out += r.stdout;
        this.err += r.stderr;
      },
      () => {
        this.pulling = false;
      },
    );
  }

  stdout(): string {
    this.pull();
    return this.out;
  }

  stderr(): string {
    this.pull();
    return this.err;
  }

  done(): boolean {
    return this.finished;
  }

  async stop(graceMs = 2000): Promise<void> {
    await this.started;
    if (this.finished || this.handle < 0) return;
    try {
      const r = await this.host.client.request<{ code: number | null; signal: string | null; stdout: string; stderr: string }>({ op: 'stop', handle: this.handle, graceMs });
      this.out = r.stdout;
      this.err = r.stderr;
      this.finish(r.code, r.signal as NodeJS.Signals | null);
    } catch {
      this.finish(null, null);
    }
  }
}

/** A bench host reached through an agent. */
export class RemoteHost implements BenchHost {
  private readonly live = new Set<RemoteProcess>();
  readonly gonePromise: Promise<string>;

  /**
   * @param localRoot the controller's checkout: argv words naming the controller's node or files in
   *   its checkout are translated to the host's (`hello.nodePath`, `hello.repoRoot`).
   */
  constructor(
    readonly label: string,
    readonly where: string,
    readonly client: AgentClient,
    readonly hello: HelloResult,
    private readonly localRoot: string,
    private readonly leaseMs: number,
  ) {
    this.gonePromise = new Promise((resolve) => {
      const t = setInterval(() => {
        if (client.gone) {
          clearInterval(t);
          resolve(client.gone);
        }
      }, 200);
      t.unref();
    });
  }

  /** Directory for this run's files on the host. */
  get workDir(): string {
    return this.hello.workDir;
  }

  /** The host's paths for the controller's node and checkout files. */
  translate(argv: string[]): string[] {
    return argv.map((a) => {
      if (a === process.execPath) return this.hello.nodePath;
      if (a.startsWith(`${this.localRoot}/`)) return this.hello.repoRoot + a.slice(this.localRoot.length);
      return a;
    });
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    // A long command: the other hosts will hear nothing meanwhile, extend their leases first.
    if (timeoutMs > this.leaseMs / 2) {
      await Promise.all(this.client.group.filter((c) => c !== this.client && !c.gone).map((c) => c.request({ op: 'lease', ms: timeoutMs + this.leaseMs }).catch(() => undefined)));
    }
    const wire = this.translate(argv);
    const r = await this.client.request<RunResult>({ op: 'exec', argv: wire, env: opts.env, timeoutMs });
    if (r.code !== 0 && !opts.allowFail) throw new CommandError([`[${this.label}]`, ...wire], r);
    return r;
  }

  spawn(argv: string[], opts: { env?: Record<string, string> } = {}): BenchProcess {
    const p = new RemoteProcess(this, argv, this.translate(argv), opts.env);
    this.live.add(p);
    return p;
  }

  forget(p: RemoteProcess): void {
    this.live.delete(p);
  }

  /** Counters and the CPU ticks / RSS of `pids` on this host, with the host's clock. */
  async sample(pids: number[]): Promise<CountersResult> {
    const c = await this.client.request<CountersResult>({ op: 'counters', pids });
    for (const p of this.live) {
      const o = c.outputs[p.agentHandle] as { stdout: string; stderr: string } | undefined;
      if (o) p.append(o);
    }
    return c;
  }

  async readCounters(): Promise<HostCounters> {
    const c = await this.sample([]);
    return { atMs: c.atMs, nstat: c.nstat, cpu: c.cpu };
  }

  /** Name links or directories in the host's state file before creating them. */
  async track(what: { links?: string[]; dirs?: string[]; pids?: number[]; restore?: string[][] }): Promise<void> {
    await this.client.request({ op: 'track', ...what });
  }

  async untrack(what: { links?: string[]; dirs?: string[]; pids?: number[]; restore?: string[][] }): Promise<void> {
    await this.client.request({ op: 'untrack', ...what }).catch(() => undefined);
  }

  /** Stop every process this host started that is still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((p) => p.stop(1500).catch(() => undefined)));
  }
}
