/** Small iproute2 queries and changes used by the VTEP (in the calling process's namespace). */
import ipaddr from 'ipaddr.js';
import { run, output } from './exec.js';

/** The interface that holds `address`, and its MTU; undefined when none does. */
export async function deviceOfAddress(address: string, netns?: string): Promise<{ dev: string; mtu: number } | undefined> {
  const want = ipaddr.parse(address).toNormalizedString();
  const json = await output(['ip', '-j', 'addr', 'show'], { netns });
  const links = JSON.parse(json) as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (ipaddr.isValid(a.local) && ipaddr.parse(a.local).toNormalizedString() === want) return { dev: l.ifname, mtu: l.mtu };
    }
  }
  return undefined;
}

/** `ip addr add CIDR dev DEV`. */
export async function addAddress(dev: string, cidr: string, netns?: string): Promise<void> {
  await run(['ip', 'addr', 'add', cidr, 'dev', dev], { netns });
}

/** `ip link set DEV txqueuelen N`. */
export async function setTxQueueLen(dev: string, frames: number, netns?: string): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', dev, 'txqueuelen', String(frames)], { netns });
}
