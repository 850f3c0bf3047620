import { defineConfig, devices } from '@playwright/test';

const PORT = Number(process.env.WEBTUNE_E2E_PORT ?? 4173);

/**
 * Debian's chromium, headless, with WebGPU on SwiftShader (a CPU Vulkan): the same adapter on
 * every machine, GPU or not. Chromium on Linux exposes WebGPU only with --enable-unsafe-webgpu;
 * the two SwiftShader flags pick the software adapter explicitly instead of relying on fallback.
 */
const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: 'test-results',
  // SwiftShader runs shaders on the CPU: generous timeouts, one browser at a time.
  timeout: 180_000,
  expect: { timeout: 120_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://localhost:${PORT}`,
    headless: true,
    screenshot: 'on',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS },
      },
    },
  ],
  // Tests run against the production build: what ships, and no dev-server dependency
  // re-optimisation reloading the page mid-test.
  webServer: {
    command: `npx vite build && npx vite preview --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
