/**
 * Reading results of any schema version. A result is checked for what it is
 * (the "vxtap-bench-result" schema and a known schemaVersion), lifted version
 * by version to the current one through `MIGRATIONS`, validated against
 * bench/result.schema.json, and its `derived` block is recomputed from the raw
 * samples with today's metric table and claims, so a report of an old result
 * shows the same figures a new run would compute from the same samples.
 *
 * Within version 1, older writers left out fields added since (TCP
 * `intervalBps`, `dataplaneRssBytes`, `dataplaneCpuSecondsPerGbit`, UDP
 * `cpuSecondsPerMpkt`); `normalize` fills them with "not recorded" values
 * (empty arrays, null) so renderers never guess. Adding a schema version
 * means: a function in MIGRATIONS from the previous version, a checked-in
 * result of the old version under test/fixtures/report/, and nothing else.
 */
import { readFileSync } from 'node:fs';
import { derive, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, type BenchResult } from '../result.js';
import { validateResult } from '../validate.js';

/** Input that is not a readable result: the CLI prints the message and exits 2. */
export class ResultInputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ResultInputError';
  }
}

type Json = Record<string, unknown>;

/**
 * Migrations: MIGRATIONS[v] turns a version-v result into a version-(v + 1)
 * result. Version 1 is the first and current version, so the table is empty;
 * the chain below runs whatever it holds.
 */
export const MIGRATIONS: Record<number, (r: Json) => Json> = {};

/** The schema versions this build reads. */
export function readableVersions(): number[] {
  const fromMigrations = Object.keys(MIGRATIONS).map(Number);
  return [...new Set([...fromMigrations, RESULT_SCHEMA_VERSION])].sort((a, b) => a - b);
}

function isObject(v: unknown): v is Json {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Fill fields that older version-1 writers left out with explicit "not recorded" values. */
function normalize(r: BenchResult): BenchResult {
  for (const s of r.samples) {
    for (const t of [s.tcp1, s.tcpN]) {
      if (!t) continue;
      (t as Partial<typeof t>).intervalBps ??= [];
      t.dataplaneCpuSecondsPerGbit ??= null;
      t.cpuHostPercent ??= null;
      t.cpuRemotePercent ??= null;
    }
    for (const u of s.udp) {
      u.cpuAtPdr ??= null;
      u.cpuSecondsPerMpkt ??= null;
      u.dataplaneCpuSecondsPerMpkt ??= null;
    }
    s.dataplaneCounters ??= null;
  }
  return r;
}

/**
 * Turn parsed JSON into a current-version BenchResult, or throw
 * ResultInputError naming `source` and what is wrong.
 */
export function migrateResult(data: unknown, source = 'result'): BenchResult {
  if (!isObject(data) || data.schema !== RESULT_SCHEMA) {
    throw new ResultInputError(`${source}: not a vxtap bench result (expected "schema": "${RESULT_SCHEMA}")`);
  }
  const version = data.schemaVersion;
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw new ResultInputError(`${source}: schemaVersion must be an integer (got ${JSON.stringify(version)})`);
  }
  if (!readableVersions().includes(version)) {
    const newer = version > RESULT_SCHEMA_VERSION ? '; it was written by a newer vxtap' : '';
    throw new ResultInputError(`${source}: unknown schemaVersion ${version} (this vxtap reads ${readableVersions().join(', ')})${newer}`);
  }
  let cur: Json = structuredClone(data);
  for (let v = version; v < RESULT_SCHEMA_VERSION; v++) cur = { ...MIGRATIONS[v](cur), schemaVersion: v + 1 };
  const errors = validateResult(cur);
  if (errors.length) {
    throw new ResultInputError(
      `${source}: does not match result.schema.json version ${RESULT_SCHEMA_VERSION}: ${errors.slice(0, 3).join('; ')}${errors.length > 3 ? ` (+${errors.length - 3} more)` : ''}`,
    );
  }
  const r = normalize(cur as unknown as BenchResult);
  r.derived = derive(r);
  return r;
}

/** Read, parse and migrate a result file; every failure is a ResultInputError naming the file. */
export function loadResult(file: string): BenchResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ResultInputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultInputError(`${file}: not JSON (${(e as Error).message})`);
  }
  return migrateResult(data, file);
}
