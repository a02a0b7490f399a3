import { defineConfig, type Plugin } from 'vitest/config';
import react from '@vitejs/plugin-react';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

// The built page carries its own strict policy (the gateway may send a stricter one as a
// header; a browser applies both): scripts and styles only from files of this origin —
// no inline script, no style attribute, no eval. `vite dev` injects inline scripts for hot
// reload, so the policy goes into the built page only.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  // WebSockets too: browsers that do not count ws(s) to this host as 'self' need the schemes; the gateway's
  // header names this host's ws/wss exactly, and a browser enforces both policies, so only those pass.
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'fleetwatch-csp',
    apply: 'build',
    transformIndexHtml: () => [
      {
        tag: 'meta',
        attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY },
        injectTo: 'head-prepend',
      },
    ],
  };
}

// The gateway serves the built files at `/`; in `vite dev` the API is proxied to it.
export default defineConfig({
  root: here,
  plugins: [react(), contentSecurityPolicy()],
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
