/**
 * What the bench's small load tools (rr.ts, transfer.ts) share: `--name value`
 * arguments with errors that name the tool and the option, and a server that
 * listens on --bind/--port, prints `ready` once listening, and exits on
 * SIGTERM or SIGINT.
 */
import type net from 'node:net';

/** The value after `--name` in argv, else `dflt`; throws naming the tool when required and missing. */
export function arg(tool: string, argv: string[], name: string, dflt?: string): string {
  const i = argv.indexOf(`--${name}`);
  const value = i >= 0 ? argv.at(i + 1) : undefined;
  if (value !== undefined) return value;
  if (dflt === undefined) throw new TypeError(`${tool}: --${name} is required`);
  return dflt;
}

/** An integer option in [min, max]. */
export function intArg(tool: string, argv: string[], name: string, min: number, max: number, dflt?: string): number {
  const v = Number(arg(tool, argv, name, dflt));
  if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`${tool}: --${name} must be an integer between ${min} and ${max}`);
  return v;
}

/** Listen on --port (and --bind, default all), print `ready` once listening, exit 0 on SIGTERM/SIGINT. */
export function serveUntilSignalled(tool: string, srv: net.Server, argv: string[]): void {
  srv.listen(Number(arg(tool, argv, 'port')), arg(tool, argv, 'bind', '0.0.0.0'), () => process.stdout.write('ready\n'));
  const stopAll = () => {
    srv.close();
    process.exit(0);
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
}
