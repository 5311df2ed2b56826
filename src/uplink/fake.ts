/** An in-memory uplink port: a FakeTap with the 24-byte tunnel virtio header (see src/tap/fake.ts). */
import { TNL_VNET_HDR_LEN } from '../native/limits.js';
import { FakeTap, type FakeTapOptions } from '../tap/fake.js';
import type { UplinkPort } from './index.js';

export class FakeUplink extends FakeTap implements UplinkPort {
  readonly receives: boolean;
  constructor(options: Omit<FakeTapOptions, 'vnetHdrLen'> & { receives?: boolean } = {}) {
    super({ name: 'uplink', ...options, vnetHdrLen: TNL_VNET_HDR_LEN });
    this.receives = options.receives ?? false;
  }
}
