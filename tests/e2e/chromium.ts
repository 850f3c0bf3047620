/**
 * Debian's chromium, headless, with WebGPU on SwiftShader (a CPU Vulkan): the same adapter on
 * every machine, GPU or not. Chromium on Linux exposes WebGPU only with --enable-unsafe-webgpu;
 * the two SwiftShader flags pick the software adapter explicitly instead of relying on fallback.
 * Specs that launch a browser of their own (the fake Hub) start from the same flags.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
