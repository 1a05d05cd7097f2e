// Lint rules, including the layering rules that keep the architecture honest:
// pure decision code never imports I/O adapters, and the decorators never import the engine.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const ioModules = [
  '@kubernetes/client-node',
  'netlink',
  'node:http',
  'node:https',
  'node:net',
  'node:fs',
  'node:child_process',
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.tools/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // Pure logic layers: decisions only, no I/O.
    files: [
      'packages/framework/src/core/**/*.ts',
      'packages/framework/src/decorators/**/*.ts',
      'packages/staticroute-operator/src/logic/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ioModules.map((name) => ({ name, message: 'pure logic must not do I/O; put it in an adapter' })),
          patterns: [
            {
              group: ['**/engine/**', '**/kube/**', '**/ops/**', '**/adapters/**'],
              message: 'pure layers must not import I/O layers',
            },
          ],
        },
      ],
    },
  },
);
