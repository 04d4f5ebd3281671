import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'src/api/schema.d.ts', 'e2e/artifacts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['src/**/*.ts', 'tests/**/*.ts'], languageOptions: { globals: globals.browser } },
  { files: ['*.js', '*.ts'], languageOptions: { globals: globals.node } },
  // The e2e scripts run in Node and hand functions to the page (browser globals).
  { files: ['e2e/**/*.mjs'], languageOptions: { globals: { ...globals.node, ...globals.browser } } },
);
