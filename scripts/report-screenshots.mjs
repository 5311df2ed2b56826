#!/usr/bin/env node
// Regenerates docs/report/ (or OUTDIR) from a bench result, reproducibly:
//   node scripts/report-screenshots.mjs RESULT.json OUTDIR [PLAN FLAGS...]
// Writes OUTDIR/report.html (vxtap report, with the plan for --target 10gbit --hosts 20 --cores 16
// unless other plan flags follow), OUTDIR/plan.md and plan.json (vxtap plan), screenshots of the
// page at 1280 px (whole page and each section) taken by headless Debian chromium in a network
// namespace with every non-file request blocked, and OUTDIR/README.md with sizes and the commands.
// Needs root and a build (npx tsc -p tsconfig.json).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [result, outDir, ...rest] = process.argv.slice(2);
if (!result || !outDir) {
  process.stderr.write('usage: node scripts/report-screenshots.mjs RESULT.json OUTDIR [--target 10gbit --hosts 20 --cores 16 ...]\n');
  process.exit(2);
}
const planFlags = rest.length ? rest : ['--target', '10gbit', '--hosts', '20', '--cores', '16'];
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const { launchIsolated } = await import(path.join(repo, 'dist', 'bench', 'report', 'browser.js'));
mkdirSync(outDir, { recursive: true });
const html = path.join(outDir, 'report.html');
const run = (args) => execFileSync(process.execPath, [main, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
run(['report', result, '--out', html, ...planFlags]);
writeFileSync(path.join(outDir, 'plan.md'), run(['plan', result, ...planFlags]));
writeFileSync(path.join(outDir, 'plan.json'), run(['plan', result, ...planFlags, '--json']));

const b = await launchIsolated(`vxrs${process.pid % 10000}`);
const shots = [];
let log;
try {
  const opened = await b.open(html, 1280, 900);
  const { page } = opened;
  log = opened.log;
  await page.screenshot({ path: path.join(outDir, 'report-top.png') });
  shots.push('report-top.png');
  await page.addStyleTag({ content: 'nav{position:static}' }); // the sticky bar would cover section shots
  // runs in the page: `document` is the browser's
  const ids = await page.evaluate(() => [...globalThis.document.querySelectorAll('main > section[id]')].map((s) => s.id));
  for (const id of ids) {
    const file = `section-${id}.png`;
    await page.locator(`#${id}`).screenshot({ path: path.join(outDir, file) });
    shots.push(file);
  }
} finally {
  await b.close();
}
if (log.blockedRequests.length || log.consoleErrors.length || log.pageErrors.length) {
  process.stderr.write(`the page misbehaved: ${JSON.stringify(log)}\n`);
  process.exit(1);
}
const runId = JSON.parse(readFileSync(path.join(outDir, 'plan.json'), 'utf8')).source.runId;
const kib = (f) => `${(statSync(path.join(outDir, f)).size / 1024).toFixed(0)} KiB`;
writeFileSync(path.join(outDir, 'README.md'), `# Example report

Rendered from \`${path.relative(repo, path.resolve(result))}\` (run \`${runId}\`${runId.startsWith('synthetic') ? ', a test fixture built from a real default run with invented iperf3 intervals; regenerate from a fresh default run' : ''}) by \`node scripts/report-screenshots.mjs ${[path.relative(repo, path.resolve(result)), path.relative(repo, path.resolve(outDir)), ...rest].join(' ')}\`.

- [report.html](report.html): ${kib('report.html')}, one self-contained file (SVG charts, the result's JSON embedded, no scripts, no network).
- [plan.md](plan.md) / [plan.json](plan.json): \`vxtap plan ${path.basename(result)} ${planFlags.join(' ')}\`.
- Screenshots at 1280 px by headless Chromium in a network namespace, every non-file request blocked (none was made, no console errors):
${shots.map((s) => `  - [${s}](${s})`).join('\n')}
`);
process.stderr.write(`${outDir}: report.html ${kib('report.html')}, ${shots.length} screenshots, plan.md\n`);
