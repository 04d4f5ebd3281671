import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Two pages over one build: the trader's page (index.html, served on :3001) and the API
// reference (reference/index.html, served at / on :3000).
export default defineConfig({
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        reference: resolve(import.meta.dirname, 'reference/index.html'),
      },
    },
  },
  test: { include: ['tests/**/*.test.ts'] },
});
