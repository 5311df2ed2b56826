/**
 * Opening a report in a real browser with no network: Debian's `chromium`,
 * started inside a network namespace of its own (no interface but a loopback
 * left down) through a one-line wrapper (`ip netns exec NS chromium "$@"`),
 * driven by playwright-core over the DevTools pipe (fds 3/4, which `ip netns
 * exec` passes through), so no socket is needed between the driver and the
 * browser. Every request that is not file: or data: is aborted and recorded,
 * console errors and page errors are recorded. Used by the browser test and
 * scripts/report-screenshots.mjs; needs root (namespaces), never downloads a
 * browser. playwright-core is a dev dependency: loaded on demand.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where Debian installs Chromium. */
export const CHROMIUM = '/usr/bin/chromium';

/** Why a browser cannot be opened here (null when it can). */
export function browserUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (the browser runs in a network namespace)';
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM} (apt-get install -y chromium; scripts/setup.mjs does)`;
  return null;
}

/** What a page did while it was open. */
export interface PageLog {
  /** Requests to anything but file: and data: URLs (all aborted). */
  blockedRequests: string[];
  consoleErrors: string[];
  pageErrors: string[];
}

/** A browser in its own namespace. */
export interface IsolatedBrowser {
  namespace: string;
  // playwright-core's Browser (typed loosely so this module compiles without it)
  browser: import('playwright-core').Browser;
  /** Open `file` at `width` x `height`; resolves to the page and its log. */
  open(file: string, width?: number, height?: number): Promise<{ page: import('playwright-core').Page; log: PageLog }>;
  close(): Promise<void>;
}

/** Start Chromium inside a new namespace `ns` (created here, deleted by close()). */
export async function launchIsolated(ns: string): Promise<IsolatedBrowser> {
  const why = browserUnavailableReason();
  if (why) throw new Error(why);
  const { chromium } = await import('playwright-core');
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${ns}-`));
  const wrapper = path.join(tmp, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  execFileSync('ip', ['netns', 'add', ns]);
  const cleanup = () => {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      for (const pid of pids)
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
    } catch {
      /* namespace gone */
    }
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  let browser: import('playwright-core').Browser;
  try {
    browser = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
  } catch (err) {
    cleanup();
    throw err;
  }
  return {
    namespace: ns,
    browser,
    async open(file, width = 1280, height = 900) {
      const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
      const log: PageLog = { blockedRequests: [], consoleErrors: [], pageErrors: [] };
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        if (!log.blockedRequests.includes(url)) log.blockedRequests.push(url);
        return route.abort('blockedbyclient');
      });
      const page = await context.newPage();
      page.on('request', (req) => {
        const u = req.url();
        if (!u.startsWith('file:') && !u.startsWith('data:') && !log.blockedRequests.includes(u)) log.blockedRequests.push(u);
      });
      page.on('console', (msg) => {
        if (msg.type() === 'error') log.consoleErrors.push(msg.text());
      });
      page.on('pageerror', (err) => log.pageErrors.push(err.message));
      await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: 'load', timeout: 60_000 });
      return { page, log };
    },
    async close() {
      await browser.close().catch(() => undefined);
      cleanup();
    },
  };
}
