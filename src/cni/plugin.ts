/**
 * The `vxtap` CNI plugin's commands: the I/O around the pure parts in
 * config.ts. ADD reads subnet.env, builds the delegate configuration, stores it
 * under `dataDir` and runs the delegate (`bridge` by default) from CNI_PATH with
 * the runtime's environment and the configuration on stdin, passing its result
 * through. CHECK and DEL run the delegate with the stored configuration, so they
 * work after subnet.env changed or vanished (flannel's plugin does the same).
 *
 * Idempotence: the state is written before the delegate's ADD (a crash halfway
 * leaves what DEL needs); a failed ADD is undone with the delegate's DEL at once,
 * unless the attachment existed before (a repeated ADD never tears down a pod).
 * DEL without stored state rebuilds the configuration from subnet.env when it can
 * (bridge and host-local DEL are idempotent) and otherwise has nothing to do:
 * success, as the spec asks of a DEL whose resources are gone. A damaged state
 * file is treated as missing by DEL, so it never blocks a pod's removal.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDelegateConf, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE, type JsonObject, type NetConf, parseNetConf, parseSubnetEnvText, stateFileName } from './config.js';
import { type CniArgs, CniError, compareVersions, CURRENT_VERSION, ErrorCode, parseCniEnv, SUPPORTED_VERSIONS } from './spec.js';

/** What the plugin prints and how it exits. */
export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

/** The executable of plugin `type` in CNI_PATH. */
export function findPlugin(type: string, path: string[]): string | CniError {
  for (const dir of path) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next directory */
    }
  }
  return new CniError(ErrorCode.IoFailure, `failed to find plugin ${JSON.stringify(type)} in CNI_PATH ${JSON.stringify(path.join(':'))}`);
}

/**
 * Run the delegate `conf.type` for `command` with the runtime's environment
 * (CNI_COMMAND set to `command`) and `conf` on stdin. Its stdout on success; its
 * own error object (code and msg kept) when it fails.
 */
export function execDelegate(command: 'ADD' | 'DEL' | 'CHECK', conf: JsonObject, args: CniArgs, env: NodeJS.ProcessEnv): string | CniError {
  const type = conf.type as string;
  const file = findPlugin(type, args.path);
  if (file instanceof CniError) return file;
  const r = spawnSync(file, [], { input: JSON.stringify(conf), env: { ...env, CNI_COMMAND: command }, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.error) return new CniError(ErrorCode.IoFailure, `running ${type} ${command}: ${r.error.message}`);
  if (r.status === 0) return r.stdout;
  try {
    const e = JSON.parse(r.stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === 'number' && typeof e.msg === 'string') {
      return new CniError(e.code, `${type} ${command}: ${e.msg}`, typeof e.details === 'string' && e.details ? e.details : undefined);
    }
  } catch {
    /* not an error object */
  }
  const why = r.signal ? `killed by ${r.signal}` : `exit status ${String(r.status)}`;
  return new CniError(ErrorCode.IoFailure, `${type} ${command} failed (${why})`, (r.stdout + r.stderr).trim().slice(0, 2000) || undefined);
}

/** Read and validate subnet.env; ENOENT is "try again later" (vxtap has not written it yet). */
export function readSubnetEnv(file: string, cniVersion: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const transient = code === 'ENOENT' && compareVersions(cniVersion, '1.0.0') >= 0;
    return new CniError(
      transient ? ErrorCode.TryAgainLater : ErrorCode.IoFailure,
      `subnetFile ${file}: cannot read it (${code ?? (e as Error).message}); is vxtap up (etcd mode) running on this host?`,
    );
  }
  return parseSubnetEnvText(text, file);
}

function statePath(n: NetConf, args: CniArgs): string {
  return join(n.dataDir ?? DEFAULT_DATA_DIR, stateFileName(args.containerId, args.ifname));
}

function readState(file: string): JsonObject | undefined | CniError {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return new CniError(ErrorCode.IoFailure, `reading ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as JsonObject;
  } catch (e) {
    return new CniError(ErrorCode.DecodingFailure, `stored delegate configuration ${file} is not valid JSON`, (e as Error).message);
  }
}

function writeState(file: string, dir: string, conf: JsonObject): CniError | undefined {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(conf), { mode: 0o600 });
    renameSync(tmp, file);
    return undefined;
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    return new CniError(ErrorCode.IoFailure, `storing the delegate configuration in ${file}: ${(e as Error).message}`);
  }
}

function removeState(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The delegate configuration with the runtime's prevResult (CHECK, DEL). */
function withPrevResult(conf: JsonObject, n: NetConf): JsonObject {
  return n.prevResult ? { ...conf, prevResult: n.prevResult } : conf;
}

function add(n: NetConf, args: CniArgs, env: NodeJS.ProcessEnv): string | CniError {
  const senv = readSubnetEnv(n.subnetFile ?? DEFAULT_SUBNET_FILE, n.cniVersion);
  if (senv instanceof CniError) return senv;
  const conf = buildDelegateConf(n, senv);
  const file = statePath(n, args);
  const dir = n.dataDir ?? DEFAULT_DATA_DIR;
  const previous = readState(file);
  if (previous instanceof CniError) return previous;
  if (previous) {
    // A second ADD for an attachment that exists: never undo the working one on failure,
    // and keep its stored configuration unless this ADD succeeds.
    const out = execDelegate('ADD', conf, args, env);
    if (out instanceof CniError) return out;
    return parseResult(out, conf) ?? writeState(file, dir, conf) ?? JSON.stringify(JSON.parse(out));
  }
  const stored = writeState(file, dir, conf);
  if (stored) return stored;
  const out = execDelegate('ADD', conf, args, env);
  const failed = out instanceof CniError ? out : parseResult(out, conf);
  if (failed) {
    // Undo what the delegate may have done; the runtime's DEL then finds nothing left.
    execDelegate('DEL', conf, args, env);
    removeState(file);
    return failed;
  }
  return JSON.stringify(JSON.parse(out as string));
}

/** A CniError when the delegate's ADD output is not JSON. */
function parseResult(out: string, conf: JsonObject): CniError | undefined {
  try {
    JSON.parse(out);
    return undefined;
  } catch (e) {
    return new CniError(ErrorCode.DecodingFailure, `${String(conf.type)} ADD printed a result that is not JSON`, (e as Error).message);
  }
}

function del(n: NetConf, args: CniArgs, env: NodeJS.ProcessEnv): string | CniError {
  const file = statePath(n, args);
  let conf = readState(file);
  if (conf instanceof CniError) {
    // A damaged state file must not block DEL forever (the runtime would retry it for good):
    // clean up as if it were missing, and remove it on success.
    if (conf.code !== ErrorCode.DecodingFailure) return conf;
    process.stderr.write(`vxtap: ${conf.message}; using subnet.env instead\n`);
    conf = undefined;
  }
  if (!conf) {
    // No state: ADD never stored it, or an earlier DEL finished. Clean up by subnet.env
    // when it is there; without it there is nothing this plugin knows to remove.
    const senv = readSubnetEnv(n.subnetFile ?? DEFAULT_SUBNET_FILE, n.cniVersion);
    if (senv instanceof CniError) {
      removeState(file);
      return '';
    }
    conf = buildDelegateConf(n, senv);
  }
  const out = execDelegate('DEL', withPrevResult(conf, n), args, env);
  if (out instanceof CniError) return out; // state kept: the runtime retries DEL
  removeState(file);
  return '';
}

function check(n: NetConf, args: CniArgs, env: NodeJS.ProcessEnv): string | CniError {
  if (compareVersions(n.cniVersion, '0.4.0') < 0) return new CniError(ErrorCode.IncompatibleVersion, `cniVersion ${n.cniVersion} does not allow CHECK (0.4.0 and later)`);
  const file = statePath(n, args);
  const conf = readState(file);
  if (conf instanceof CniError) return conf;
  if (!conf) return new CniError(ErrorCode.UnknownContainer, `container ${args.containerId} interface ${args.ifname} is unknown to network ${n.name} (no state in ${file})`);
  const out = execDelegate('CHECK', withPrevResult(conf, n), args, env);
  return out instanceof CniError ? out : '';
}

/** Run one plugin invocation: the CNI environment, the configuration text from stdin. Never throws. */
export function runPlugin(env: NodeJS.ProcessEnv, stdin: string): PluginOutput {
  let version = CURRENT_VERSION;
  const fail = (e: CniError): PluginOutput => ({ stdout: JSON.stringify(e.toJSON(version)) + '\n', exitCode: 1 });
  try {
    const args = parseCniEnv(env);
    if (args instanceof CniError) return fail(args);
    if (args.command === 'VERSION') return { stdout: JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n', exitCode: 0 };
    const n = parseNetConf(stdin);
    if (n instanceof CniError) return fail(n);
    version = n.cniVersion;
    const run = args.command === 'ADD' ? add : args.command === 'DEL' ? del : check;
    const out = run(n, args, env);
    if (out instanceof CniError) return fail(out);
    return { stdout: out ? out + '\n' : '', exitCode: 0 };
  } catch (e) {
    // A bug or an unexpected I/O error: still the spec's error object, never a stack trace on stdout.
    return fail(new CniError(ErrorCode.IoFailure, `vxtap: ${(e as Error).message}`));
  }
}
