/**
 * flannel-compatible control plane (etcd mode of `vxtap up`): subnet leases and
 * peer discovery on etcd, in flannel's VXLAN backend format, driving a VTEP
 * through DataplaneControl. Entry point: `startFlannelControl()`.
 */
export { startFlannelControl, validateFlannelOptions, renewIntervalSeconds, FatalControlError, MAX_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS } from './control.js';
export type { FlannelControl, FlannelControlOptions, FlannelStats, MakeVtep, VtepRequest, ControlledVtep } from './control.js';
export { FLANNEL_CLI_OPTIONS, addFlannelCliOptions, flannelOptionsFromCli, parseDurationSeconds } from './cli-options.js';
export type { CliOptionSpec, FlannelCliValues } from './cli-options.js';
export { FLANNEL_DEFAULTS, NetworkConfigError, parseNetworkConfig, validateNetworkConfig } from './config.js';
export type { NetworkConfig } from './config.js';
export { DEFAULT_SUBNET_FILE } from './subnet-env.js';
export { MissingConfigError, EtcdLeaseRegistry } from './registry.js';
export type { LeaseRegistry } from './registry.js';
export { REFUSAL_REASONS } from './lease-policy.js';
export type { RefusalReason, RefusedLease } from './lease-policy.js';
