import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Two pages over one build: the trader's page (index.html, served on :3001) and the API
// reference (reference/index.html, served at / on :3000).
// Not import.meta.dirname: that needs Node 20.11, and Debian 12's Node.js is 18.
const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      input: {
        main: resolve(here, 'index.html'),
        reference: resolve(here, 'reference/index.html'),
      },
    },
  },
  test: { include: ['tests/**/*.test.ts'] },
});
