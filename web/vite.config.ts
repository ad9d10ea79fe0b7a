import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The console is served by `sluice serve` at `/` on the API's origin; in development the
// Vite server proxies the API to a local `sluice serve` (override with SLUICE_API).
const api = process.env.SLUICE_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/healthz': { target: api },
      '/readyz': { target: api },
    },
  },
  // `vite preview` answers like `sluice serve` does, CSP included, so a preview shows what
  // production would block.
  preview: {
    headers: {
      'Content-Security-Policy':
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    // The editor's tests type into the whole form, and every keystroke re-renders it and
    // the YAML editor in jsdom: on a loaded two-core machine one such test took 5 s, the
    // default limit, while asserting exactly what it does on a quiet one.
    testTimeout: 30_000,
  },
});
