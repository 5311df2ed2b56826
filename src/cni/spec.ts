/**
 * The parts of the CNI specification (containernetworking/cni SPEC.md) the
 * `vxtap` plugin speaks: the versions, the well-known error codes, the error
 * object and the runtime's environment variables. Pure code, no I/O.
 *
 * Versions: Debian's containernetworking-plugins 1.1.1 (`bridge`, `host-local`)
 * accept 0.1.0 .. 1.0.0. The plugin speaks 0.3.0 .. 1.0.0: the result format
 * with `interfaces`/`ips` (0.3.0), CHECK (0.4.0 and later only, as libcni's
 * skel enforces) and error code 11 (1.0.0). The delegate is called with the
 * configuration's own version, so its result is already in the format the
 * runtime asked for and is passed through unchanged.
 */

/** The CNI versions this plugin accepts in a network configuration. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;

/** The version of the VERSION answer and of errors raised before a configuration is read. */
export const CURRENT_VERSION = '1.0.0';

/** Well-known error codes (SPEC.md, "Error"); 100 and above are plugin-specific. */
export const ErrorCode = {
  /** The configuration's cniVersion is not supported (or does not allow the command). */
  IncompatibleVersion: 1,
  /** A field of the network configuration is not supported. */
  UnsupportedField: 2,
  /** The container is unknown: nothing to clean up. */
  UnknownContainer: 3,
  /** A CNI_* environment variable is missing or invalid. */
  InvalidEnvironment: 4,
  /** Reading or writing a file, or running a delegate, failed. */
  IoFailure: 5,
  /** The configuration (or a delegate's output) is not valid JSON. */
  DecodingFailure: 6,
  /** The network configuration (or subnet.env) is invalid. */
  InvalidNetworkConfig: 7,
  /** A transient condition (subnet.env not written yet): try again later (1.0.0). */
  TryAgainLater: 11,
} as const;

/** A CNI error: what the plugin prints as JSON on stdout before exiting nonzero. */
export class CniError extends Error {
  constructor(
    /** The spec's error code. */
    readonly code: number,
    /** The short message (the spec's `msg`). */
    msg: string,
    /** Longer text (the spec's `details`), optional. */
    readonly details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }

  /** The spec's error object for a configuration of `cniVersion`. */
  toJSON(cniVersion: string = CURRENT_VERSION): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** True when `v` is a version this plugin accepts. */
export function isSupportedVersion(v: unknown): v is (typeof SUPPORTED_VERSIONS)[number] {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** -1, 0, 1 as semantic versions `a` and `b` (dotted numbers) compare. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The CNI commands. */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** The runtime's parameters, from the CNI_* environment variables. */
export interface CniArgs {
  command: CniCommand;
  /** CNI_CONTAINERID (alphanumerics, `_`, `.`, `-`; safe as a file name). */
  containerId: string;
  /** CNI_NETNS (a path; empty on DEL when the namespace is gone). */
  netns: string;
  /** CNI_IFNAME. */
  ifname: string;
  /** CNI_PATH split at `:`. */
  path: string[];
}

const REQUIRED: Record<Exclude<CniCommand, 'VERSION'>, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  // The spec lets CNI_NETNS be empty on DEL (the namespace may be gone already).
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
};

/** SPEC.md: a container ID starts with an alphanumeric and holds alphanumerics, `_`, `.`, `-`. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** True when `name` is a valid interface name (SPEC.md: at most 15 bytes, not . or .., no / : or white space). */
export function isValidIfname(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** Read the CNI_* variables; a CniError (code 4) names the first missing or invalid one. */
export function parseCniEnv(env: Record<string, string | undefined>): CniArgs | CniError {
  const command = env.CNI_COMMAND;
  if (!command) return new CniError(ErrorCode.InvalidEnvironment, 'CNI_COMMAND is not set (ADD, DEL, CHECK or VERSION)');
  if (command === 'VERSION') return { command, containerId: '', netns: '', ifname: '', path: [] };
  if (command !== 'ADD' && command !== 'DEL' && command !== 'CHECK') {
    return new CniError(ErrorCode.InvalidEnvironment, `CNI_COMMAND: unknown command ${JSON.stringify(command)} (ADD, DEL, CHECK or VERSION)`);
  }
  const missing = REQUIRED[command].filter((k) => !env[k]);
  const { CNI_CONTAINERID: containerId = '', CNI_IFNAME: ifname = '', CNI_PATH: cniPath = '' } = env;
  if (missing.length) return new CniError(ErrorCode.InvalidEnvironment, `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set (required for ${command})`);
  if (!CONTAINER_ID.test(containerId)) {
    return new CniError(ErrorCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} is invalid (alphanumerics, '_', '.', '-'; starting with an alphanumeric)`);
  }
  if (!isValidIfname(ifname)) return new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name (1-15 bytes, no '/', ':' or white space)`);
  const path = cniPath.split(':').filter(Boolean);
  if (!path.length) return new CniError(ErrorCode.InvalidEnvironment, 'CNI_PATH holds no directory');
  return { command, containerId, netns: env.CNI_NETNS ?? '', ifname, path };
}
