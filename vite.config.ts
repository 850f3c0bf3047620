import { defineConfig } from 'vite';

// WGSL sources are imported as strings with `?raw`, which Vite supports out of the box.
export default defineConfig({
  build: { target: 'es2022' },
  worker: { format: 'es' },
});
