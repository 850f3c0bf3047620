import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

const PLACEHOLDER = /\$\{(\w+)\}/g;

/**
 * Resolves a shader file's `#if ${NAME}` / `#elif ${NAME}` / `#else` / `#endif` blocks with
 * wgsl-preprocessor. The library is a template-literal tag; a .wgsl file imported as text has its
 * `${NAME}` placeholders split out here and bound to `flags`, which hands the tag exactly what a
 * literal would. Every placeholder must name a flag, so a typo cannot silently drop a block.
 */
export function preprocessShader(source: string, flags: Readonly<Record<string, boolean>>): string {
  const strings: string[] = [];
  const values: boolean[] = [];
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    if (!Object.hasOwn(flags, match[1])) {
      throw new Error(`shader placeholder \${${match[1]}} is not one of the flags ${Object.keys(flags).join(', ')}`);
    }
    strings.push(source.slice(last, match.index));
    values.push(flags[match[1]]);
    last = match.index + match[0].length;
  }
  strings.push(source.slice(last));
  return wgsl(strings, ...values);
}
