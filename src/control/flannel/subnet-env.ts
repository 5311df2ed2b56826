/**
 * subnet.env, as flanneld writes it (pkg/subnet WriteSubnetFile), for Docker's
 * `--bip`/`--mtu` or a CNI plugin: FLANNEL_NETWORK, FLANNEL_SUBNET (first usable
 * address/len), FLANNEL_MTU, FLANNEL_IPMASQ, and the IPv6 pair when enabled.
 * Written atomically (temp file + rename).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Cidr, formatCidr, parseCidr } from './cidr.js';
import { firstUsableOf } from './lease.js';
import type { NetworkConfig } from './config.js';

/** Default location (flannel uses /run/flannel/subnet.env). */
export const DEFAULT_SUBNET_FILE = '/run/vxtap/subnet.env';

/** The file's text for a lease. */
export function renderSubnetEnv(config: NetworkConfig, subnet: Cidr, mtu: number, ipMasq: boolean, ipv6Subnet?: Cidr): string {
  const lines = [`FLANNEL_NETWORK=${formatCidr(config.ipv4.network)}`, `FLANNEL_SUBNET=${firstUsableOf(subnet)}`];
  if (config.ipv6 && ipv6Subnet) {
    lines.push(`FLANNEL_IPV6_NETWORK=${formatCidr(config.ipv6.network)}`, `FLANNEL_IPV6_SUBNET=${firstUsableOf(ipv6Subnet)}`);
  }
  lines.push(`FLANNEL_MTU=${mtu}`, `FLANNEL_IPMASQ=${ipMasq}`);
  return lines.join('\n') + '\n';
}

/** Parse KEY=VALUE lines. */
export function parseSubnetEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}

/** Write the file atomically, creating its directory. */
export async function writeSubnetEnv(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

/**
 * The subnet recorded by a previous run (FLANNEL_SUBNET's network), if the file
 * exists and is readable: flanneld tries that subnet first on restart.
 */
export async function readPreviousSubnet(path: string): Promise<Cidr | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const v = parseSubnetEnv(text).FLANNEL_SUBNET;
  if (!v) return undefined;
  try {
    const c = parseCidr(v, false); // 198.19.5.1/24 -> 198.19.5.0/24
    return c.family === 4 ? c : undefined;
  } catch {
    return undefined;
  }
}
