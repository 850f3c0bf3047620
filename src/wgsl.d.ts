declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}

/** wgsl-preprocessor ships plain JavaScript: a template-literal tag that resolves #if/#elif/#else/#endif. */
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  export function wgsl(strings: readonly string[], ...values: unknown[]): string;
}
