/**
 * `vxtap cni install [--dir DIR]`: put the `vxtap` CNI plugin where a container
 * runtime looks for plugins (default /opt/cni/bin). The plugin itself is
 * src/cni/main.ts; see README, "Pods: the vxtap CNI plugin".
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CNI_BIN_DIR, installPlugin } from '../cni/install.js';

/** Register `vxtap cni`. */
export function register(program: Command): void {
  const cni = program.command('cni').description('The vxtap CNI plugin (type "vxtap"): pods on the overlay through the standard bridge and host-local plugins.');
  cni
    .command('install')
    .description('Write an executable named "vxtap" into the CNI plugin directory; it runs this build\'s plugin with this Node binary. Idempotent.')
    .addOption(new Option('--dir <dir>', 'CNI plugin directory (must exist)').default(DEFAULT_CNI_BIN_DIR).env('VXTAP_CNI_DIR'))
    .action((opts: { dir: string }) => {
      const main = fileURLToPath(new URL('../cni/main.js', import.meta.url));
      if (!existsSync(main)) {
        process.stderr.write(`vxtap cni install: ${main} is missing; build first (npx tsc -p tsconfig.json)\n`);
        process.exit(1);
      }
      let r;
      try {
        r = installPlugin(opts.dir, process.execPath, main);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        process.stderr.write(`vxtap cni install: ${(e as Error).message}\n`);
        process.exit(code === 'ENOENT' || code === 'ENOTDIR' ? 2 : 1);
      }
      process.stdout.write(JSON.stringify(r) + '\n');
      process.stderr.write(`vxtap cni install: ${r.changed ? 'wrote' : 'unchanged'} ${r.path} (runs ${r.node} ${r.main})\n`);
    });
}
