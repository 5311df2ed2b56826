/**
 * Two "real hosts" for `vxtap bench --hosts` tests: two network namespaces,
 * each running its own OpenSSH server with a key made for the test, reached
 * over a management veth each and joined by a data veth (the underlay). The
 * builder lives in bench/remote/ssh-netns.ts (the agreement tool uses it too);
 * this keeps the tests' addresses and adds host B's second sshd without vxtap.
 *
 *   root 198.18.237.1/30 -- 198.18.237.2/30 nsA      nsA 198.18.238.1/24 -- 198.18.238.2/24 nsB
 *   root 198.18.237.5/30 -- 198.18.237.6/30 nsB
 *
 * `destroy()` removes everything (sshd and every process in the namespaces,
 * the namespaces with their veths, the key directory), also after a failure.
 */
import { createSshNetnsPair, sshNetnsSkipReason, type SshNetnsHost, type SshNetnsPair } from '../../bench/remote/ssh-netns.js';

/** Why the SSH hosts cannot be built here, or null. */
export const sshdSkipReason = sshNetnsSkipReason;

/** One SSH-reached host. */
export type SshTestHost = SshNetnsHost;

/** The pair and its ssh configuration; `bBare` is host B without vxtap (a second sshd on port 2222 hiding the checkout). */
export type SshTestPair = SshNetnsPair & { bBare: NonNullable<SshNetnsPair['bBare']> };

/** Build the pair; `prefix` (<= 5 characters) names namespaces and root-side links; `hiddenRoot` is hidden from `bBare`'s sessions. */
export async function createSshPair(prefix: string, hiddenRoot: string): Promise<SshTestPair> {
  const p = await createSshNetnsPair({ prefix, mgmtNet: '198.18.237', dataNet: '198.18.238', hiddenRoot });
  return p as SshTestPair;
}
