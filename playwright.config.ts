import { defineConfig, devices } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS } from './tests/e2e/chromium';

const PORT = Number(process.env.WEBTUNE_E2E_PORT ?? 4173);

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
        launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS },
      },
    },
  ],
  // Tests run against a built site, not the dev server (whose dependency re-optimisation can reload
  // the page mid-test): dist/ is the production build (site-demo and csp specs serve it as files),
  // dist-e2e/ the same site with the fault hooks compiled in (src/testing/hooks.ts), which the
  // preview server serves to every other spec. The e2e build may also connect to data.example.org,
  // the "other host" the URL-import specs route, as a deployment may add hosts (src/site/csp.ts).
  webServer: {
    command:
      'npx vite build && WEBTUNE_CONNECT_SRC=https://data.example.org npx vite build --mode e2e && ' +
      `npx vite preview --mode e2e --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
