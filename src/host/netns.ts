/**
 * Network namespaces, veth pairs and bridges: the building blocks of the test and
 * bench topologies. A `HostScope` records everything it creates and removes it all
 * in `cleanup()`, also after a failure halfway through.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { run, output, start, stop } from './exec.js';

/** Names of existing network namespaces. */
export async function listNetns(): Promise<string[]> {
  const out = await output(['ip', 'netns', 'list'], { allowFail: true });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n): n is string => !!n);
}

/** Delete a namespace, killing every process still inside it first. */
export async function deleteNetns(name: string): Promise<void> {
  const pids = await output(['ip', 'netns', 'pids', name], { allowFail: true });
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await run(['ip', 'netns', 'del', name], { allowFail: true });
}

/** A short unique suffix for names (interface names are limited to 15 bytes). */
export function uniqueTag(): string {
  return `${(process.pid % 1000).toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
}

/**
 * Everything one test or bench run creates on the host. Names it creates start
 * with `prefix`, so `--cleanup` style sweeps can find leftovers of killed runs.
 */
export class HostScope {
  private readonly namespaces: string[] = [];
  private readonly links: { name: string; netns?: string }[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly hooks: (() => Promise<void> | void)[] = [];

  constructor(readonly prefix: string) {}

  /**
   * Create a namespace named `${prefix}${suffix}` with loopback up. One of that
   * name left by a killed run (its processes still in it) is removed first: the
   * prefix is this scope's alone, and otherwise every later run failed on
   * "File exists" until someone cleaned up by hand.
   */
  async netns(suffix: string): Promise<string> {
    const name = `${this.prefix}${suffix}`;
    if (existsSync(`/run/netns/${name}`)) await deleteNetns(name);
    await run(['ip', 'netns', 'add', name]);
    this.namespaces.push(name);
    await run(['ip', 'link', 'set', 'lo', 'up'], { netns: name });
    return name;
  }

  /** A veth pair with one end in each namespace (undefined = root namespace). */
  async veth(a: { name: string; netns?: string }, b: { name: string; netns?: string }, mtu?: number): Promise<void> {
    await run(['ip', 'link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name]);
    this.links.push({ name: a.name });
    if (a.netns) await run(['ip', 'link', 'set', a.name, 'netns', a.netns]);
    if (b.netns) await run(['ip', 'link', 'set', b.name, 'netns', b.netns]);
    this.links[this.links.length - 1] = { name: a.name, netns: a.netns };
    for (const end of [a, b]) {
      if (mtu) await run(['ip', 'link', 'set', end.name, 'mtu', String(mtu)], { netns: end.netns });
      await run(['ip', 'link', 'set', end.name, 'up'], { netns: end.netns });
    }
  }

  /** A bridge (in a namespace or the root namespace), up. */
  async bridge(name: string, netns?: string): Promise<void> {
    await run(['ip', 'link', 'add', name, 'type', 'bridge'], { netns });
    this.links.push({ name, netns });
    await run(['ip', 'link', 'set', name, 'up'], { netns });
  }

  /** Put `dev` under bridge `br` (both in `netns`). */
  async enslave(dev: string, br: string, netns?: string): Promise<void> {
    await run(['ip', 'link', 'set', dev, 'master', br], { netns });
  }

  /** Add an address (CIDR) to a device. */
  async addr(netns: string | undefined, dev: string, cidr: string): Promise<void> {
    await run(['ip', 'addr', 'add', cidr, 'dev', dev], { netns });
  }

  /** Start a process that cleanup() stops. */
  spawn(argv: string[], opts: Parameters<typeof start>[1] = {}): ChildProcess {
    const child = start(argv, opts);
    this.children.push(child);
    return child;
  }

  /** Run `fn` during cleanup (before namespaces are deleted). */
  onCleanup(fn: () => Promise<void> | void): void {
    this.hooks.push(fn);
  }

  /** Stop processes, run hooks, delete links and namespaces. Never throws. */
  async cleanup(): Promise<void> {
    for (const child of this.children.splice(0).reverse()) {
      await stop(child).catch(() => undefined);
    }
    for (const hook of this.hooks.splice(0).reverse()) {
      try {
        await hook();
      } catch {
        /* keep cleaning */
      }
    }
    for (const link of this.links.splice(0).reverse()) {
      await run(['ip', 'link', 'del', link.name], { netns: link.netns, allowFail: true });
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      await deleteNetns(ns);
    }
  }
}
