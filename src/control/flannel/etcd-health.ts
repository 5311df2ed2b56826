/**
 * Shared by the lease keeper and the lease watcher: one view of whether etcd
 * answers (shown in `vxtap stats`, logged once per change), and the retry loop
 * that backs off on connection errors but gives up at once on errors retrying
 * cannot fix (bad config, refused credentials, a lost subnet).
 */
import { Backoff } from '../etcd-client.js';
import type { Clock } from './clock.js';
import { NetworkConfigError } from './config.js';
import { MissingConfigError } from './registry.js';

/** An unrecoverable condition (no free subnet, subnet taken over). */
export class FatalControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatalControlError';
  }
}

/** etcd said no to our credentials: retrying cannot help. */
export function isCredentialError(e: unknown): boolean {
  // anything may be thrown; only an object with a name or message can say it is a credential error
  const err = e as Partial<Error> | null | undefined;
  return (
    ['EtcdAuthenticationFailedError', 'EtcdPermissionDeniedError', 'EtcdUserNotFoundError', 'EtcdRoleNotGrantedError'].includes(err?.name ?? '') ||
    /authentication failed|user name is empty|permission denied|invalid user ID or password/i.test(err?.message ?? '')
  );
}

/** Whether retrying `e` can help. */
export function isRetryable(e: unknown): boolean {
  return !(e instanceof NetworkConfigError || e instanceof MissingConfigError || e instanceof FatalControlError || isCredentialError(e));
}

/** Reachability of etcd as the control plane last saw it. */
export class EtcdHealth {
  state: 'ok' | 'etcd-unreachable' = 'ok';

  constructor(private readonly log: (msg: string) => void) {}

  /** A call failed with a connection error. */
  failed(what: string, e: unknown): void {
    if (this.state === 'ok') this.log(`etcd unreachable (${what}: ${(e as Error).message}); keeping last known peers, retrying with backoff`);
    this.state = 'etcd-unreachable';
  }

  /** A call went through. */
  ok(): void {
    if (this.state !== 'ok') this.log('etcd reachable again');
    this.state = 'ok';
  }
}

/** Context of a retry loop. */
export interface RetryContext {
  clock: Clock;
  health: EtcdHealth;
  /** Stop retrying (rethrow) once this returns true. */
  stopped: () => boolean;
  /** Give up after this time (clock ms). */
  deadlineMs?: number;
}

/** Retry `fn` on connection errors with backoff until it succeeds, stop, or the deadline. */
export async function retrying<T>(what: string, fn: () => Promise<T>, ctx: RetryContext): Promise<T> {
  const backoff = new Backoff();
  for (;;) {
    try {
      const r = await fn();
      ctx.health.ok();
      return r;
    } catch (e) {
      if (isCredentialError(e)) throw new Error(`${what}: etcd refused our credentials (--etcd-username/--etcd-password): ${(e as Error).message}`, { cause: e });
      if (!isRetryable(e) || ctx.stopped()) throw e;
      ctx.health.failed(what, e);
      if (ctx.deadlineMs !== undefined && ctx.clock.now() > ctx.deadlineMs) throw new Error(`${what}: etcd unreachable: ${(e as Error).message}`, { cause: e });
      await ctx.clock.sleep(backoff.next());
    }
  }
}
