// ESLint for vxtap: typescript-eslint's strict type-checked set over the
// TypeScript in src/, bench/ and test/ (typed through tsconfig.check.json, which
// is tsconfig.json plus test/), ESLint's recommended set over the plain
// JavaScript, and eslint-config-prettier last so that no rule argues with the
// formatter. `npm run lint`.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'results/**', 'test-artifacts/**', 'contrib/**', 'docs/**'] },
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers in messages, addresses, ports and file names are this codebase's
      // everyday template (`${mtu}`, `198.18.0.${i}`); their formatting is never in
      // doubt. Booleans, nullish values, objects and `any` in templates stay errors.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  {
    // Tests check a value with expect() and then use it with `!`: a wrong `!`
    // fails the test with a TypeError at that line, which is what a test is for.
    // Source and bench code keep the rule.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' } },
  },
  prettier,
);
