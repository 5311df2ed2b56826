/**
 * The `vxtap` CNI plugin's executable entry (what `vxtap cni install` points
 * the runtime at): the CNI environment and the configuration on stdin in, the
 * result or the spec's error object on stdout, exit status 0 or 1. Runtimes run
 * it for every pod, so it imports only the plugin (no CLI framework, no etcd).
 */
import { readFileSync } from 'node:fs';
import { runPlugin } from './plugin.js';

let stdin = '';
if (process.env.CNI_COMMAND !== 'VERSION') {
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    /* no stdin: parseNetConf reports the empty configuration */
  }
}
const out = runPlugin(process.env, stdin);
process.stdout.write(out.stdout, () => process.exit(out.exitCode));
