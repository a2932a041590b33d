// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import regexp from 'eslint-plugin-regexp';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // test/fixtures/lint/ holds code the lint must reject (test/lint.test.ts lints it on purpose).
    ignores: [
      '**/node_modules/**',
      'data/**',
      '**/dist/**',
      'coverage/**',
      'test/fixtures/lint/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  regexp.configs['flat/recommended'],
  {
    // User text meets these regular expressions: a pattern that backtracks super-linearly (or
    // rescans the input from every position) lets one document or question stall a process.
    rules: {
      'regexp/no-super-linear-backtracking': 'error',
      'regexp/no-super-linear-move': 'error',
    },
  },
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Only main.ts may read the environment or exit the process (STYLE.md).
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'exit', message: 'Only a main.ts may exit the process.' },
        { object: 'process', property: 'env', message: 'Only a main.ts may read process.env.' },
      ],
    },
  },
  {
    files: ['**/main.ts', 'scripts/**', 'test/**', 'bench/**', '*.config.ts', '**/*.test.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Tests handle parsed JSON and vitest's asymmetric matchers, which are typed `any`.
    files: ['test/**', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    // The demo page's plain browser script (no build step).
    files: ['apps/api/public/**/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'module' },
  },
);
