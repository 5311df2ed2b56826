/**
 * A small JSON Schema validator for the subset bench/result.schema.json uses:
 * type (including type arrays and "integer"), properties, required,
 * additionalProperties (boolean or schema), items, enum, const, minimum,
 * maximum, minLength, pattern, anyOf, $ref to "#/$defs/NAME". Enough to check
 * results without a dependency; errors name the JSON path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A JSON Schema node (the subset above). */
export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  anyOf?: SchemaNode[];
  $defs?: Record<string, SchemaNode>;
  [k: string]: unknown;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function matchesType(v: unknown, t: string): boolean {
  if (t === 'integer') return typeof v === 'number' && Number.isInteger(v);
  if (t === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === t;
}

/** Validate `value` against `schema`; returns error strings ("$.a.b: ..."), empty when valid. */
export function validate(value: unknown, schema: SchemaNode, root: SchemaNode = schema, at = '$'): string[] {
  if (schema.$ref) {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = m ? root.$defs?.[m[1]] : undefined;
    if (!target) return [`${at}: unresolvable $ref ${schema.$ref}`];
    return validate(value, target, root, at);
  }
  const errs: string[] = [];
  if (schema.anyOf) {
    const results = schema.anyOf.map((s) => validate(value, s, root, at));
    if (!results.some((r) => r.length === 0)) errs.push(`${at}: matches none of anyOf (${results.map((r) => r[0]).join(' | ')})`);
  }
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) return [...errs, `${at}: expected ${types.join(' or ')}, got ${typeOf(value)}`];
  }
  if (schema.const !== undefined && value !== schema.const) errs.push(`${at}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.some((e) => e === value)) errs.push(`${at}: expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errs.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errs.push(`${at}: ${value} > maximum ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errs.push(`${at}: shorter than ${schema.minLength}`);
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) errs.push(`${at}: does not match ${schema.pattern}`);
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((v, i) => errs.push(...validate(v, schema.items as SchemaNode, root, `${at}[${i}]`)));
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in o)) errs.push(`${at}: missing required property "${k}"`);
    for (const [k, v] of Object.entries(o)) {
      const ps = schema.properties?.[k];
      if (ps) errs.push(...validate(v, ps, root, `${at}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${at}: unexpected property "${k}"`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') errs.push(...validate(v, schema.additionalProperties, root, `${at}.${k}`));
    }
  }
  return errs;
}

/** Path of bench/result.schema.json in the checkout (from src or dist). */
export function schemaPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'result.schema.json'), path.join(here, '..', '..', 'bench', 'result.schema.json'), path.join(here, '..', 'bench', 'result.schema.json')]) {
    try {
      readFileSync(p);
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error('bench/result.schema.json not found');
}

let cached: SchemaNode | null = null;

/** The result schema. */
export function resultSchema(): SchemaNode {
  cached ??= JSON.parse(readFileSync(schemaPath(), 'utf8')) as SchemaNode;
  return cached;
}

/** Validate a result object against bench/result.schema.json. */
export function validateResult(result: unknown): string[] {
  return validate(result, resultSchema());
}
