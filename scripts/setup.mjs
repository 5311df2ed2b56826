#!/usr/bin/env node
// Idempotent set-up for `npm test` and `npm run bench` on a fresh Debian machine:
// missing system tools (apt), npm dependencies, the native addon, the TypeScript
// build. Each step is skipped when it is already done. Progress goes to stderr.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (m) => process.stderr.write(`setup: ${m}\n`);

// Debian packages and a binary each one provides (checked on PATH / by file).
const APT = [
  ['iproute2', '/usr/sbin/ip'],
  ['iputils-ping', '/usr/bin/ping'],
  ['procps', '/usr/bin/ps'],
  ['iperf3', '/usr/bin/iperf3'],
  // the bench's default request/response latency tool (--latency-tool sockperf)
  ['sockperf', '/usr/bin/sockperf'],
  ['tcpdump', '/usr/bin/tcpdump'],
  ['ethtool', '/usr/sbin/ethtool'],
  ['nftables', '/usr/sbin/nft'],
  ['openvswitch-switch', '/usr/sbin/ovs-vswitchd'],
  ['etcd-server', '/usr/bin/etcd'],
  ['etcd-client', '/usr/bin/etcdctl'],
  ['openssl', '/usr/bin/openssl'],
  ['kmod', '/usr/bin/kmod'],
  // bench --hosts tests: real sshd in namespaces, the system ssh client as the transport
  ['openssh-server', '/usr/sbin/sshd'],
  ['openssh-client', '/usr/bin/ssh'],
  // report.html browser test: headless Debian Chromium driven by playwright-core (no browser download)
  ['chromium', '/usr/bin/chromium'],
  ['fonts-dejavu-core', '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'],
  ['fonts-liberation', '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf'], // Arial metrics: the charts' text layout
  // pods through the standard CNI plugins (bridge, host-local) that the vxtap CNI plugin delegates to
  ['containernetworking-plugins', '/usr/lib/cni/bridge'],
  // bench claims: a real database through each mode, and CPU contention
  ['redis-server', '/usr/bin/redis-server'],
  ['redis-tools', '/usr/bin/redis-benchmark'],
  ['stress-ng', '/usr/bin/stress-ng'],
  // the C++ formatter that .ci/run checks the addon with
  ['clang-format', '/usr/bin/clang-format'],
];

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with status ${r.status}`);
}

// Needed by the tests only: `setup.mjs --for bench` (what `npm run bench` runs) leaves
// them out, so the bench's first run on a fresh machine does not wait for a browser.
const TEST_ONLY = new Set(['etcd-server', 'etcd-client', 'openssl', 'openssh-server', 'chromium', 'fonts-dejavu-core', 'containernetworking-plugins', 'clang-format']);
const forBench = process.argv.includes('--for') && process.argv[process.argv.indexOf('--for') + 1] === 'bench';

const missing = APT.filter(([pkg, file]) => !existsSync(file) && !(forBench && TEST_ONLY.has(pkg))).map(([pkg]) => pkg);
if (missing.length) {
  if (process.getuid?.() !== 0) {
    say(`missing Debian packages (run as root to install): ${missing.join(' ')}`);
  } else {
    say(`installing Debian packages: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    sh('apt-get', ['update', '-q'], { env });
    sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
  }
}

const newer = (a, b) => !existsSync(b) || statSync(a).mtimeMs > statSync(b).mtimeMs;

if (!existsSync(path.join(root, 'node_modules/.package-lock.json')) || newer(path.join(root, 'package.json'), path.join(root, 'node_modules/.package-lock.json'))) {
  say('installing npm dependencies');
  sh('npm', [existsSync(path.join(root, 'package-lock.json')) ? 'ci' : 'install', '--no-audit', '--no-fund']);
}

const addon = path.join(root, 'native/build/Release/vxtap_native.node');
const nativeSrc = path.join(root, 'native/src');
const srcNewest = Math.max(
  statSync(path.join(root, 'native/binding.gyp')).mtimeMs,
  ...readdirSync(nativeSrc).map((f) => statSync(path.join(nativeSrc, f)).mtimeMs),
);
if (!existsSync(addon) || statSync(addon).mtimeMs < srcNewest) {
  say('building the native addon');
  sh(path.join(root, 'node_modules/.bin/node-gyp'), ['rebuild', '--directory', 'native']);
}

say('compiling TypeScript');
sh(path.join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']);

