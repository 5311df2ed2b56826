/**
 * A thin wrapper over the `etcd3` client: endpoints, TLS client certificates,
 * user/password, bounded call deadlines and reconnection with backoff. The
 * control planes use the returned `Etcd3` directly for KV, lease and watch calls.
 *
 * Reconnection: gRPC's own channel backoff (200 ms doubling to 5 s here, instead
 * of gRPC's 1 s .. 120 s default, so a returning etcd is seen within seconds), a
 * per-host circuit breaker that reopens after 1 s, and the watch manager's
 * exponential backoff capped at 5 s. Loops above this (lease renewal) use
 * `Backoff` for their own retries.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry, type IBackoff } from 'cockatiel';

/** How to reach and authenticate to etcd. */
export interface EtcdClientOptions {
  /** 'http://127.0.0.1:2379' or 'https://...'; at least one. */
  endpoints: string[];
  /** PEM files for TLS; `caFile` is required for https endpoints. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** etcd user/password authentication. */
  auth?: { username: string; password: string };
  /** Deadline for each unary call, milliseconds (default 5000). */
  callTimeoutMs?: number;
  /** Longest reconnect backoff, milliseconds (default 5000). */
  maxBackoffMs?: number;
}

/** Check the options; returns an Error naming the option, or undefined. */
export function validateEtcdClientOptions(o: EtcdClientOptions): Error | undefined {
  if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) return new TypeError('etcd.endpoints must list at least one URL (--etcd-endpoints)');
  let https = 0;
  for (const e of o.endpoints) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      return new TypeError(`etcd.endpoints: ${JSON.stringify(e)} is not a URL (want http://HOST:PORT or https://HOST:PORT)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return new TypeError(`etcd.endpoints: ${e} must use http:// or https://`);
    if (u.protocol === 'https:') https++;
  }
  if (https && https !== o.endpoints.length) return new TypeError('etcd.endpoints must be all http:// or all https://');
  const tls = o.tls ?? {};
  if ((tls.certFile && !tls.keyFile) || (!tls.certFile && tls.keyFile)) return new TypeError('etcd.tls: --etcd-certfile and --etcd-keyfile must be given together');
  if (https && !tls.caFile) return new TypeError('etcd.tls.caFile (--etcd-cafile) is required for https:// endpoints');
  if (!https && (tls.caFile || tls.certFile)) return new TypeError('etcd.tls: TLS files given but the endpoints are http://; use https:// URLs');
  if (o.auth && (!o.auth.username || typeof o.auth.password !== 'string')) return new TypeError('etcd.auth needs both --etcd-username and --etcd-password');
  return undefined;
}

/** Build an etcd3 client; throws on invalid options or unreadable TLS files. */
export function createEtcdClient(o: EtcdClientOptions): Etcd3 {
  const err = validateEtcdClientOptions(o);
  if (err) throw err;
  const callTimeoutMs = o.callTimeoutMs ?? 5000;
  const maxBackoffMs = o.maxBackoffMs ?? 5000;
  const opts: IOptions = {
    hosts: o.endpoints,
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.min_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': maxBackoffMs,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
    },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, o.endpoints.length) }),
      // etcd3 types this as IBackoff but calls it as a factory (`.next()` first), which ExponentialBackoff is.
      watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: maxBackoffMs }) as unknown as IBackoff<unknown>,
    },
  };
  const tls = o.tls;
  if (tls?.caFile) {
    const file = (what: string, p: string) => {
      try {
        return readFileSync(p);
      } catch (e) {
        throw new Error(`etcd.tls.${what}: cannot read ${p}: ${(e as Error).message}`, { cause: e });
      }
    };
    opts.credentials = {
      rootCertificate: file('caFile', tls.caFile),
      ...(tls.certFile ? { certChain: file('certFile', tls.certFile) } : {}),
      ...(tls.keyFile ? { privateKey: file('keyFile', tls.keyFile) } : {}),
    };
  }
  if (o.auth) opts.auth = { username: o.auth.username, password: o.auth.password };
  return new Etcd3(opts);
}

/** Exponential backoff with full jitter, for retry loops. */
export class Backoff {
  private attempt = 0;
  constructor(
    readonly initialMs = 200,
    readonly maxMs = 5000,
  ) {}
  /** Milliseconds to wait before the next attempt. */
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(cap / 2 + (Math.random() * cap) / 2);
  }
  /** Call after a success. */
  reset(): void {
    this.attempt = 0;
  }
}
