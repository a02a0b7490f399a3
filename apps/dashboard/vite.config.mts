import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

// The gateway serves the built files at `/`; in `vite dev` the API is proxied to it.
export default defineConfig({
  root: here,
  plugins: [react()],
  resolve: {
    alias: {
      '@fleetwatch/contracts': resolve(root, 'libs/contracts/src/index.ts'),
      '@fleetwatch/ui': resolve(root, 'libs/ui/src/index.ts'),
    },
  },
  build: { outDir: resolve(root, 'dist/apps/dashboard'), emptyOutDir: true, sourcemap: true },
  server: {
    port: 5173,
    proxy: { '/api': 'http://127.0.0.1:3000', '/ws': { target: 'ws://127.0.0.1:3000', ws: true } },
  },
  test: { environment: 'node', include: ['src/**/*.spec.{ts,tsx}', '../../libs/ui/src/**/*.spec.{ts,tsx}'] },
});
