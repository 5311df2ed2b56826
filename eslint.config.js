// ESLint for vxtap: typescript-eslint's strict type-checked set over the
// TypeScript in src/, bench/ and test/ (typed through tsconfig.check.json, which
// is tsconfig.json plus test/), ESLint's recommended set over the plain
// JavaScript, and eslint-config-prettier last so that no rule argues with the
// formatter. `npm run lint`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'results/**', 'test-artifacts/**', 'contrib/**', 'docs/**'] },
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers in messages, addresses, ports and file names are this codebase's
      // everyday template (`${mtu}`, `198.18.0.${i}`), and booleans print as the
      // true/false that subnet.env and the logs want; neither's text is in doubt.
      // Nullish values, never, RegExps and `any` stay errors: write String(x) or
      // `x ?? 'none'` where "null" or "undefined" is meant to be printed (the
      // options are spelled out: the rule's own defaults would allow them all).
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowAny: false, allowNever: false, allowNullish: false, allowRegExp: false }],
      // `(err) => reject(err)` and `() => resolve()` are the codebase's callback
      // idiom; the rule still flags a void call used as a value anywhere else.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // A leading underscore marks a parameter an interface requires but this
      // implementation does not read, and `{ drop: _drop, ...rest }` omits a field.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Tests check a value with expect() and then use it with `!`: a wrong `!`
    // fails the test with a TypeError at that line, which is what a test is for.
    // Source and bench code keep the rule.
    // Tests also read what the CLI and the bench printed (JSON.parse of stdout,
    // result.json, etcd values: `any`) and poke into it; the expect() on the
    // field is the check, and restating every output schema as a type in the
    // test would only repeat bench/result.ts. So `any` may flow in tests; source
    // and bench code keep all five no-unsafe-* rules.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // the same: `.catch((e) => e)` hands the error to expect()
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'off',
    },
  },
  {
    // Fakes and stubs (beside their interfaces, and in tests) implement async
    // interfaces (OverlayHost, LeaseRegistry, trial functions) without awaiting
    // anything; `async` keeps their throws rejections, as in the real thing.
    files: ['test/**/*.ts', 'src/**/*-fake.ts', 'src/**/fake.ts', 'src/**/fake-*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', structuredClone: 'readonly' } },
  },
  prettier,
);
