import { describe, expect, it } from 'vitest';
import { allocatedSize } from '../../src/gpu/context';
import { LoraAdapter, LoraWeights } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { testGpu } from '../helpers/gpu';
import { tinyConfig } from '../helpers/tiny-model';

describe('LoRA adapters on the GPU', () => {
  const config = tinyConfig();
  const lora = validateLoraConfig({ r: 3, targets: ['q_proj', 'down_proj'] });

  it('an inference adapter holds its parameters only; a trainable one adds gradients and both AdamW moments', async () => {
    const gpu = await testGpu();
    const base = gpu.bufferAccounting.liveBytes;
    const trainable = new LoraAdapter(gpu, config, lora);
    const flat = allocatedSize(trainable.layout.totalFloats * 4);
    expect(gpu.bufferAccounting.liveBytes - base).toBe(4 * flat);
    const tensors = await trainable.readTensors();
    // The readback keeps a small staging buffer in the Gpu's pool; count from after it.
    const pooled = gpu.bufferAccounting.liveBytes - base - 4 * flat;
    const inference = LoraWeights.fromTensors(gpu, config, lora, tensors, 'test');
    expect(inference).not.toBeInstanceOf(LoraAdapter);
    expect(gpu.bufferAccounting.liveBytes - base - pooled).toBe(5 * flat);
    expect([...(await inference.readTensors())].map(([name, t]) => [name, Array.from(t.data)])).toEqual(
      [...tensors].map(([name, t]) => [name, Array.from(t.data)]),
    );
    // A scaled view shares the parameters: it allocates nothing and frees nothing.
    const half = inference.scaledBy(0.5);
    expect(half.scaling).toBe(inference.scaling / 2);
    half.destroy();
    expect(gpu.bufferAccounting.liveBytes - base - pooled).toBe(5 * flat);
    inference.destroy();
    trainable.destroy();
    expect(gpu.bufferAccounting.liveBytes - base - pooled).toBe(0);
  });
});
