import { describe, expect, it } from 'vitest';
import embeddingSource from '../../shaders/embedding.wgsl?raw';
import { ShaderInterfaceError } from '../../src/gpu/errors';
import { preprocessShader } from '../../src/gpu/preprocess';
import { entryInterface } from '../../src/gpu/shader-interface';
import { MATMUL_SHADER } from '../../src/kernels/matmul';
import { weightShader } from '../../src/kernels/weight-shader';

const TOY = `struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
#if \${WIDE}
@group(0) @binding(1) var<storage, read> w: array<u32>;
fn at(i: u32) -> f32 { return f32(w[i] >> 16u); }
#else
@group(0) @binding(1) var<storage, read> w: array<f32>;
fn at(i: u32) -> f32 { return w[i]; }
#endif
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1)
fn toy() { if (p.n > 0u) { y[0] = at(0u); } }
`;

describe('shader variants through wgsl-preprocessor', () => {
  it('keeps exactly one branch per #if, so the scanner sees one declaration of each binding', () => {
    for (const wide of [true, false]) {
      const code = preprocessShader(TOY, { WIDE: wide });
      expect(code).not.toMatch(/#if|#else|#endif|\$\{/);
      expect(code.match(/var<storage, read> w/g)).toHaveLength(1);
      expect(code).toContain(wide ? 'array<u32>' : 'array<f32>');
      const { entry } = entryInterface(code, 'toy');
      expect([...entry.storage]).toEqual([
        ['w', 1],
        ['y', 2],
      ]);
      expect([...entry.params.keys()]).toEqual(['n']);
    }
  });

  it('refuses a placeholder that names no flag, and a source whose directives were never resolved', () => {
    expect(() => preprocessShader(TOY, { WIDTH: true })).toThrow(/\$\{WIDE\} is not one of the flags WIDTH/);
    expect(() => entryInterface(TOY, 'toy')).toThrow(ShaderInterfaceError);
    expect(() => entryInterface(TOY, 'toy')).toThrow(/preprocessShader/);
  });

  it('the 16-bit matmul variants bind W as u32 words and have no dY^T X entry; the f32 one has all of them', () => {
    for (const format of ['bf16', 'f16'] as const) {
      const code = weightShader(MATMUL_SHADER, format);
      expect(code).toMatch(/var<storage, read> b: array<u32>/);
      expect(code).toContain(format === 'bf16' ? 'bitcast<f32>' : 'unpack2x16float');
      const { shader, entry } = entryInterface(code, 'matmul_forward_bias_direct');
      expect([...shader.entries.keys()].some((name) => name.startsWith('matmul_backward_weight'))).toBe(false);
      expect([...entry.storage.keys()]).toEqual(['a', 'b', 'c', 'bias']);
      expect(() => entryInterface(code, 'matmul_backward_weight')).toThrow(ShaderInterfaceError);
    }
    const f32 = weightShader(MATMUL_SHADER, 'f32');
    expect(f32).toMatch(/var<storage, read> b: array<f32>/);
    expect(f32).not.toContain('widen_weight');
    expect(entryInterface(f32, 'matmul_backward_weight').entry.storage.has('b')).toBe(true);
    // One string per variant, so Gpu.kernel compiles each once.
    expect(weightShader(MATMUL_SHADER, 'bf16')).toBe(weightShader(MATMUL_SHADER, 'bf16'));
    expect(entryInterface(weightShader(embeddingSource, 'f16'), 'embedding_forward').entry.storage.get('table')).toBe(2);
  });
});
