#!/usr/bin/env node
// Does `vxtap bench --hosts` measure what the local bench measures? Builds two SSH-reached
// namespaces on this machine, runs N pairs of one-round benches with and without --hosts in
// ABBA order, and prints the agreement table (bench/remote/agreement.ts; --help for the flags):
//   node scripts/hosts-agreement.mjs [--pairs 3] [--modes bare,kernel-vxlan,vxtap] [--quick] [--out results] [--json]
// Needs root, openssh-server and a build (npx tsc -p tsconfig.json).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const impl = path.join(repo, 'dist', 'bench', 'remote', 'agreement-run.js');
if (!existsSync(impl)) {
  process.stderr.write(`hosts-agreement: no build at ${impl} (npx tsc -p tsconfig.json)\n`);
  process.exit(2);
}
const { main } = await import(impl);
process.exitCode = await main(process.argv.slice(2));
