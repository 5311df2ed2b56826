/**
 * The bench agent (`vxtap agent --stdio`): runs on a bench host, started by
 * the controller through SSH (or as a local child for the host `local`), and
 * answers the requests of `protocol.ts` on its stdin/stdout.
 *
 * Design note. The agent, not the SSH session, owns the clean-up of its host:
 * - Everything the run creates on the host is named in a state file
 *   (`<state dir>/agent/<netns>-<run>.json`) before it exists: processes the
 *   agent started (pid + argv), links the controller announced with `track`,
 *   directories. The agent removes all of it when the run says `bye`, when its
 *   stdin closes (the SSH connection dropped or the controller died), when its
 *   lease runs out (the controller stopped answering), and on SIGTERM/SIGHUP.
 *   A SIGKILLed agent leaves the state file: `vxtap bench --cleanup --hosts`
 *   starts an agent whose `cleanup` request removes what it names.
 * - A per-host lock (`<state dir>/agent/lock-<netns>.json`, taken with O_EXCL,
 *   stale when its agent is gone) refuses a second measuring run.
 * - Counters are read with the host's own clock when asked, never streamed;
 *   spawned processes' output travels only when the controller asks for it
 *   (readiness checks and probes, between measurements), so the control
 *   channel is quiet while a measurement runs.
 * Hosts are keyed by network namespace inode, so two "hosts" that are two
 * namespaces of one machine (the tests) keep separate locks and state.
 */
import { enterCpuGroup, type CpuPriority, type Placed } from '../placement.js';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseNstat, pidAlive as alive, pidCmdline as cmdline, pidStartTicks as startTicks, processTicks, readProcStat } from '../../src/host/procstat.js';
import { releaseLockFile, takeLockFile } from '../lockfile.js';
import { collectEnvironment } from '../environment.js';
import { stateDir, writeFileAtomic } from '../state.js';
import { buildId } from './build.js';
import { LineSplitter, parseFrame, PROTOCOL_VERSION, preciseNowMs, type CountersResult, type HelloResult, type RequestFrame } from './protocol.js';

/** Directory of agent state files and locks on a host. */
export function agentDir(): string {
  return path.join(stateDir(), 'agent');
}

/** Network namespace inode of this process ("4026531840"). */
export function netnsId(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What one run created on this host. */
export interface AgentStateData {
  runId: string;
  agentPid: number;
  netns: string;
  startedAt: string;
  /** Started processes; `startTicks` tells the same process from a reused pid. */
  processes: { pid: number; argv: string[]; startTicks: number | null }[];
  links: string[];
  dirs: string[];
  /** Commands undoing changes to the host's own interfaces (--data-dev), run after the processes stop. */
  restore?: string[][];
}

/** What a clean-up removed. */
export interface AgentCleanupReport {
  processes: string[];
  links: string[];
  dirs: string[];
  skipped: string[];
}

/** True when `pid` is still the process that was started (pids get reused; the start time does not change on exec). */
function stillRuns(p: { pid: number; startTicks: number | null }): boolean {
  const t = startTicks(p.pid);
  return t !== null && p.startTicks !== null && t === p.startTicks;
}

/** The holder in a host lock file (`<state dir>/agent/lock-<netns>.json`). */
interface AgentLock {
  runId: string;
  agentPid: number;
  since: string;
}

function isAgent(pid: number): boolean {
  return alive(pid) && /agent(\.js)? --stdio/.test(cmdline(pid) ?? '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM the process group of `pid`, SIGKILL after `graceMs`; resolves when it is gone. */
async function killGroup(pid: number, graceMs: number): Promise<void> {
  const sig = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      try {
        process.kill(pid, s);
      } catch {
        /* gone */
      }
    }
  };
  sig('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(20);
  if (alive(pid)) sig('SIGKILL');
  const hard = Date.now() + 2000;
  while (alive(pid) && Date.now() < hard) await sleep(20);
}

/** Run `argv` to completion (no shell); never rejects. */
function runCapture(argv: string[], timeoutMs: number, env?: Record<string, string>): { child: ChildProcess | null; done: Promise<{ code: number; stdout: string; stderr: string }> } {
  let child: ChildProcess;
  try {
    child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env, detached: true });
  } catch (err) {
    return { child: null, done: Promise.resolve({ code: 127, stdout: '', stderr: (err as Error).message }) };
  }
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < 64 * 1024 * 1024) stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4 * 1024 * 1024) stderr += d;
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const timer = setTimeout(() => {
      if (child.pid) void killGroup(child.pid, 500);
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${argv[0]}: command not found` : e.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === 'SIGKILL' || signal === 'SIGTERM' ? 124 : 128), stdout, stderr });
    });
  });
  return { child, done };
}

/** Remove what `data` names (processes, links, directories). Never throws. */
export async function removeRunLeftovers(data: AgentStateData, report: AgentCleanupReport): Promise<void> {
  await Promise.all(
    data.processes.map(async (p) => {
      if (stillRuns(p)) {
        await killGroup(p.pid, 1000);
        report.processes.push(`${p.pid} ${p.argv.join(' ').slice(0, 120)}`);
      }
    }),
  );
  // Links before restores: an OVS bridge left by a killed ovs-vswitchd holds the
  // underlay address that a restore puts back on the data interface.
  for (const link of [...data.links].reverse()) {
    const r = await runCapture(['ip', 'link', 'del', link], 10_000).done;
    if (r.code === 0) report.links.push(link);
  }
  for (const argv of [...(data.restore ?? [])].reverse()) {
    await runCapture(argv, 10_000).done;
    report.processes.push(`restored: ${argv.join(' ')}`);
  }
  for (const d of data.dirs) {
    rmSync(d, { recursive: true, force: true });
    report.dirs.push(d);
  }
}

/** `cleanup` on a host: remove what killed runs left (state files whose agent is gone, in this namespace). */
export async function cleanupStaleRuns(force: boolean, selfPid = process.pid): Promise<AgentCleanupReport> {
  const report: AgentCleanupReport = { processes: [], links: [], dirs: [], skipped: [] };
  const dir = agentDir();
  const ns = netnsId();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return report;
  }
  for (const n of names) {
    const file = path.join(dir, n);
    if (n === `lock-${ns}.json`) {
      try {
        const l = JSON.parse(readFileSync(file, 'utf8')) as AgentLock;
        if (l.agentPid !== selfPid && (force || !isAgent(l.agentPid))) rmSync(file, { force: true });
      } catch {
        rmSync(file, { force: true });
      }
      continue;
    }
    if (!n.startsWith(`${ns}-`) || !n.endsWith('.json')) continue;
    let data: AgentStateData;
    try {
      data = JSON.parse(readFileSync(file, 'utf8')) as AgentStateData;
    } catch {
      rmSync(file, { force: true });
      continue;
    }
    if (data.agentPid === selfPid) continue;
    if (isAgent(data.agentPid) && !force) {
      report.skipped.push(`${data.runId} (agent pid ${data.agentPid} still running; use --force)`);
      continue;
    }
    if (isAgent(data.agentPid)) await killGroup(data.agentPid, 3000);
    await removeRunLeftovers(data, report);
    rmSync(file, { force: true });
  }
  return report;
}

/** The agent: serve requests on `input`/`output` until told `bye` or the connection drops. */
export class Agent {
  private readonly splitter = new LineSplitter();
  private state: AgentStateData | null = null;
  private stateFile = '';
  private lock: { file: string; holder: AgentLock } | null = null;
  private placed: Placed | null = null;
  private workDir = '';
  private leaseMs = 30_000;
  private leaseUntil = Date.now() + 60_000;
  private readonly spawned = new Map<
    number,
    { child: ChildProcess; argv: string[]; out: string; err: string; sentOut: number; sentErr: number; exited: Promise<{ code: number | null; signal: string | null }> }
  >();
  private readonly execs = new Set<ChildProcess>();
  private execDeadline = 0;
  private nextHandle = 1;
  private closing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly root: string;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
    root: string,
  ) {
    this.root = root;
    input.setEncoding('utf8');
    input.on('data', (d: string | Buffer) => this.onData(String(d)));
    input.on('end', () => void this.shutdown('the controller connection closed (stdin EOF)'));
    input.on('error', () => void this.shutdown('stdin error'));
    output.on('error', () => void this.shutdown('the controller connection broke (stdout error)'));
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now > this.leaseUntil && now > this.execDeadline) void this.shutdown(`lease of ${this.leaseMs} ms ran out: the controller stopped answering`);
    }, 500);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void this.shutdown(sig));
  }

  private send(frame: unknown): void {
    try {
      this.output.write(`${JSON.stringify(frame)}\n`);
    } catch {
      /* a broken pipe is handled by the error event */
    }
  }

  private log(line: string): void {
    try {
      mkdirSync(agentDir(), { recursive: true });
      appendFileSync(path.join(agentDir(), 'agent.log'), `${new Date().toISOString()} netns ${netnsId()} pid ${process.pid} ${this.state?.runId ?? '-'}: ${line}\n`);
    } catch {
      /* best effort */
    }
  }

  private onData(chunk: string): void {
    let lines: string[];
    try {
      lines = this.splitter.push(chunk);
    } catch (err) {
      void this.shutdown((err as Error).message);
      return;
    }
    for (const line of lines) {
      this.leaseUntil = Date.now() + this.leaseMs;
      let frame: RequestFrame;
      try {
        frame = parseFrame(line) as unknown as RequestFrame;
      } catch (err) {
        this.send({ id: -1, ok: false, error: { message: (err as Error).message, code: 'EPROTO' } });
        continue;
      }
      this.handle(frame).then(
        (result) => this.send({ id: frame.id, ok: true, result }),
        (err: unknown) => this.send({ id: frame.id, ok: false, error: { message: (err as Error).message, code: (err as { code?: string }).code } }),
      );
    }
  }

  /** The state of the run begun on this host; the protocol sends `begin` before any request that needs it. */
  private begun(): AgentStateData {
    if (!this.state) throw new Error('no run begun on this host (the controller must send "begin" first)');
    return this.state;
  }

  private saveState(): void {
    if (this.state) writeFileAtomic(this.stateFile, JSON.stringify(this.state, null, 2));
  }

  private async handle(req: RequestFrame): Promise<unknown> {
    if (req.op !== 'hello' && req.op !== 'clock' && !this.state) throw Object.assign(new Error('protocol: hello first'), { code: 'EPROTO' });
    switch (req.op) {
      case 'hello':
        return this.hello(req.protocol, req.runId, req.lock, req.leaseMs, req.cpuPriority);
      case 'clock':
        return { clockMs: preciseNowMs() };
      case 'lease':
        this.leaseUntil = Date.now() + Math.max(this.leaseMs, req.ms);
        return {};
      case 'exec': {
        const timeoutMs = req.timeoutMs ?? 60_000;
        this.execDeadline = Math.max(this.execDeadline, Date.now() + timeoutMs + 5000);
        const { child, done } = runCapture(req.argv, timeoutMs, req.env);
        if (child) this.execs.add(child);
        const r = await done;
        if (child) this.execs.delete(child);
        return r;
      }
      case 'spawn':
        return this.spawnProc(req.argv, req.env);
      case 'output': {
        const p = this.spawned.get(req.handle);
        if (!p) throw new Error(`no process with handle ${req.handle}`);
        const r = { stdout: p.out.slice(p.sentOut), stderr: p.err.slice(p.sentErr) };
        p.sentOut = p.out.length;
        p.sentErr = p.err.length;
        return r;
      }
      case 'stop': {
        const p = this.spawned.get(req.handle);
        if (!p) throw new Error(`no process with handle ${req.handle}`);
        if (p.child.pid) await killGroup(p.child.pid, req.graceMs);
        const e = await p.exited;
        return { ...e, stdout: p.out, stderr: p.err };
      }
      case 'counters':
        return this.counters(req.pids);
      case 'track':
      case 'untrack': {
        const st = this.begun();
        for (const l of req.links ?? []) {
          st.links = st.links.filter((x) => x !== l);
          if (req.op === 'track') st.links.push(l);
        }
        for (const d of req.dirs ?? []) {
          st.dirs = st.dirs.filter((x) => x !== d);
          if (req.op === 'track') st.dirs.push(d);
        }
        for (const pid of req.pids ?? []) {
          st.processes = st.processes.filter((p) => p.pid !== pid);
          if (req.op === 'track') st.processes.push({ pid, argv: (cmdline(pid) ?? '').split(' '), startTicks: startTicks(pid) });
        }
        for (const argv of req.restore ?? []) {
          const key = JSON.stringify(argv);
          st.restore = (st.restore ?? []).filter((x) => JSON.stringify(x) !== key);
          if (req.op === 'track') st.restore.push(argv);
        }
        this.saveState();
        return {};
      }
      case 'environment':
        return this.environment(req.dev);
      case 'interrupt':
        for (const c of this.execs) if (c.pid) void killGroup(c.pid, 500);
        return {};
      case 'cleanup':
        return cleanupStaleRuns(req.force);
      case 'udpListen':
        return this.udpListen(req.addr, req.port);
      case 'udpSend':
        return this.udpSend(req.from, req.to, req.port, req.count);
      case 'udpResult': {
        const l = this.udpListeners.get(req.handle);
        if (!l) throw new Error(`no UDP listener ${req.handle}`);
        // On a loaded host the datagrams can still be queued behind this request: wait for them, bounded.
        const until = Date.now() + Math.min(Math.max(0, req.waitMs ?? 0), 10_000);
        while ((l.from.get(req.from) ?? 0) < (req.expect ?? 0) && Date.now() < until) await sleep(20);
        this.udpListeners.delete(req.handle);
        l.sock.close();
        return { received: l.from.get(req.from) ?? 0, fromOthers: [...l.from].filter(([a]) => a !== req.from).reduce((n, [, c]) => n + c, 0) };
      }
      case 'bye': {
        const report = await this.cleanRun('the run finished');
        setTimeout(() => void this.shutdown('bye'), 50);
        return report;
      }
      default:
        throw Object.assign(new Error(`protocol: unknown op ${(req as { op: string }).op}`), { code: 'EPROTO' });
    }
  }

  private hello(protocol: number, runId: string, lock: boolean, leaseMs: number, cpuPriority?: CpuPriority): HelloResult {
    if (protocol !== PROTOCOL_VERSION) {
      setTimeout(() => void this.shutdown('protocol mismatch'), 50);
      throw Object.assign(new Error(`protocol version ${protocol} is not this agent's (${PROTOCOL_VERSION})`), { code: 'EPROTO' });
    }
    if (this.state) throw Object.assign(new Error('protocol: hello twice'), { code: 'EPROTO' });
    if (!/^[A-Za-z0-9._-]{1,80}$/.test(runId)) throw new TypeError('hello.runId must be 1-80 characters of [A-Za-z0-9._-]');
    const ns = netnsId();
    mkdirSync(agentDir(), { recursive: true });
    if (lock) this.takeLock(ns, runId);
    this.leaseMs = Math.max(2000, leaseMs);
    this.leaseUntil = Date.now() + this.leaseMs;
    this.workDir = path.join(agentDir(), `${runId}-${ns}`);
    this.stateFile = path.join(agentDir(), `${ns}-${runId}.json`);
    this.state = { runId, agentPid: process.pid, netns: ns, startedAt: new Date().toISOString(), processes: [], links: [], dirs: [this.workDir] };
    this.saveState();
    mkdirSync(this.workDir, { recursive: true });
    // A measuring run: this agent and every process it starts from now on measure in the run's CPU group on
    // this machine, joined when the controller or the other host's agent made it already (placement.ts).
    if (lock && cpuPriority) this.placed = enterCpuGroup(runId, cpuPriority, undefined, true);
    let bootId = '';
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      /* not Linux? */
    }
    return {
      ...(this.placed ? { cpuPlacement: this.placed.placement } : {}),
      protocol: PROTOCOL_VERSION,
      build: buildId(this.root),
      hostname: os.hostname(),
      pid: process.pid,
      uid: process.getuid?.() ?? -1,
      clockMs: Date.now(),
      netns: ns,
      bootId,
      sshConnection: process.env.SSH_CONNECTION ?? null,
      nodePath: process.execPath,
      repoRoot: this.root,
      workDir: this.workDir,
      stateFile: this.stateFile,
    };
  }

  private takeLock(ns: string, runId: string): void {
    const file = path.join(agentDir(), `lock-${ns}.json`);
    const me: AgentLock = { runId, agentPid: process.pid, since: new Date().toISOString() };
    const got = takeLockFile(file, me, (h) => isAgent(h.agentPid));
    if (!got.taken) {
      const h = got.holder;
      throw Object.assign(
        new Error(`host is in use by bench run ${h.runId} (agent pid ${h.agentPid}, since ${h.since}); wait for it to finish, or remove a stale run with 'vxtap bench --cleanup --hosts ...'`),
        { code: 'EBUSY' },
      );
    }
    this.lock = { file, holder: me };
  }

  private spawnProc(argv: string[], env: Record<string, string> | undefined): { handle: number; pid: number } {
    const handle = this.nextHandle++;
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env, detached: true });
    const entry = {
      child,
      argv,
      out: '',
      err: '',
      sentOut: 0,
      sentErr: 0,
      exited: new Promise<{ code: number | null; signal: string | null }>((resolve) => {
        child.once('error', () => resolve({ code: 127, signal: null }));
        child.once('close', (code, signal) => resolve({ code, signal }));
      }),
    };
    this.spawned.set(handle, entry);
    const pid = child.pid ?? -1;
    if (pid > 0) {
      this.begun().processes.push({ pid, argv, startTicks: startTicks(pid) });
      this.saveState();
    }
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (entry.out.length < 16 * 1024 * 1024) entry.out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (entry.err.length < 1024 * 1024) entry.err += d;
    });
    void entry.exited.then((e) => {
      if (this.state) {
        this.state.processes = this.state.processes.filter((p) => p.pid !== pid);
        this.saveState();
      }
      this.send({ event: 'exit', handle, code: e.code, signal: e.signal, stdout: entry.out, stderr: entry.err });
    });
    return { handle, pid };
  }

  private readonly udpListeners = new Map<number, { sock: dgram.Socket; from: Map<string, number> }>();

  private udpListen(addr: string, port: number): Promise<{ handle: number }> {
    const sock = dgram.createSocket('udp4');
    const from = new Map<string, number>();
    sock.on('message', (_m, rinfo) => from.set(rinfo.address, (from.get(rinfo.address) ?? 0) + 1));
    return new Promise((resolve, reject) => {
      sock.once('error', (e: NodeJS.ErrnoException) => {
        sock.close();
        reject(Object.assign(new Error(`cannot bind UDP ${addr}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use on this host (another VXLAN endpoint?)' : e.message}`), { code: e.code }));
      });
      sock.bind(port, addr, () => {
        const handle = this.nextHandle++;
        this.udpListeners.set(handle, { sock, from });
        resolve({ handle });
      });
    });
  }

  private async udpSend(from: string, to: string, port: number, count: number): Promise<{ sent: number }> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, from, () => resolve());
    });
    const payload = Buffer.alloc(50, 0); // a VXLAN-sized header's worth of zeros; nobody acts on it
    let sent = 0;
    for (let i = 0; i < Math.min(count, 100); i++) {
      await new Promise<void>((resolve) =>
        sock.send(payload, port, to, (err) => {
          if (!err) sent++;
          resolve();
        }),
      );
      await sleep(10);
    }
    sock.close();
    return { sent };
  }

  private async counters(pids: number[]): Promise<CountersResult> {
    const [n, stat, ticks] = await Promise.all([runCapture(['nstat', '-asz', '--json'], 10_000).done, readProcStat(), processTicks(pids)]);
    let nstat: Record<string, number> = {};
    try {
      nstat = parseNstat(n.stdout);
    } catch {
      /* nstat missing */
    }
    let rssBytes = 0;
    for (const pid of pids) {
      try {
        const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) rssBytes = Math.max(rssBytes, Number(m[1]) * 1024);
      } catch {
        /* gone */
      }
    }
    const outputs: CountersResult['outputs'] = {};
    for (const [handle, p] of this.spawned) {
      if (p.out.length === p.sentOut && p.err.length === p.sentErr) continue;
      outputs[handle] = { stdout: p.out.slice(p.sentOut), stderr: p.err.slice(p.sentErr) };
      p.sentOut = p.out.length;
      p.sentErr = p.err.length;
    }
    return { atMs: Date.now(), nstat, cpu: stat.total, ticks, rssBytes, outputs };
  }

  private async environment(dev: string | null): Promise<unknown> {
    const env = await collectEnvironment(this.root, 1000);
    const nic: Record<string, unknown> = { dev };
    if (dev) {
      const info = await runCapture(['ethtool', '-i', dev], 10_000).done;
      const feats = await runCapture(['ethtool', '-k', dev], 10_000).done;
      nic.driver = /^driver:\s*(.*)$/m.exec(info.stdout)?.[1]?.trim() ?? null;
      nic.ethtoolI = info.code === 0 ? info.stdout.trim() : null;
      nic.offloads = Object.fromEntries(
        feats.stdout
          .split('\n')
          .map((l) => /^\s*([a-z0-9-]+):\s+(on|off)/.exec(l))
          .filter((m): m is RegExpExecArray => !!m)
          .map((m) => [m[1], m[2] === 'on']),
      );
      try {
        nic.mtu = Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim());
      } catch {
        nic.mtu = null;
      }
    }
    return { ...env, nic };
  }

  /** Remove everything this run created on the host (processes, tracked links, dirs), release the lock. */
  private async cleanRun(why: string): Promise<AgentCleanupReport> {
    const report: AgentCleanupReport = { processes: [], links: [], dirs: [], skipped: [] };
    const t0 = Date.now();
    for (const c of this.execs) if (c.pid) void killGroup(c.pid, 300);
    for (const l of this.udpListeners.values()) l.sock.close();
    this.udpListeners.clear();
    if (this.state) {
      await removeRunLeftovers(this.state, report);
      rmSync(this.stateFile, { force: true });
      this.log(`cleaned up (${why}) in ${Date.now() - t0} ms: ${report.processes.length} processes, links [${report.links.join(' ')}]`);
      this.state = null;
    }
    if (this.lock) {
      releaseLockFile(this.lock.file, this.lock.holder);
      this.lock = null;
    }
    return report;
  }

  /** Clean up and exit (idempotent). */
  shutdown(why: string): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        clearInterval(this.timer);
        await this.cleanRun(why).catch(() => undefined);
        this.placed?.leave();
        process.exit(0);
      })();
    }
    return this.closing;
  }
}
