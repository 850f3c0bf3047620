import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/context';
import { createNodeDevice } from '../../src/gpu/node-device';
import { residualForward } from '../../src/kernels/residual';

const freshGpu = async () => new Gpu(await createNodeDevice());

describe('Gpu', () => {
  it('counts the bytes of live buffers and keeps the peak', async () => {
    const gpu = await freshGpu();
    const a = gpu.createBuffer(1000, 'a');
    const b = gpu.createBuffer(10, 'b');
    // Sizes are padded to 16 bytes (and at least 16).
    expect(gpu.bufferAccounting).toEqual({ liveBytes: 1024, peakBytes: 1024, liveBuffers: 2 });
    a.destroy();
    a.destroy();
    expect(gpu.bufferAccounting).toEqual({ liveBytes: 16, peakBytes: 1024, liveBuffers: 1 });
    gpu.resetPeak();
    expect(gpu.bufferAccounting.peakBytes).toBe(16);
    // Readback buffers and uniform blocks count too.
    const y = gpu.createBuffer(16, 'y');
    residualForward(gpu, { a: b, b, y }, { n: 4 });
    await gpu.readF32(y, 4);
    expect(gpu.bufferAccounting.peakBytes).toBeGreaterThan(16 + 16 + 16 + 256);
  });

  it('orders a write after the work recorded before it', async () => {
    const gpu = await freshGpu();
    const target = gpu.upload(new Float32Array([5, 6, 7, 8]), 'target');
    const sum = gpu.createBuffer(16, 'sum');
    // Recorded, not yet submitted: a clear, and a kernel that reads the old contents.
    gpu.clear(target);
    residualForward(gpu, { a: target, b: target, y: sum }, { n: 4 });
    gpu.write(target, new Float32Array([1, 2, 3, 4]));
    expect(Array.from(await gpu.readF32(target, 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(await gpu.readF32(sum, 4))).toEqual([0, 0, 0, 0]);
  });

  it('records but does not execute work in a dry run', async () => {
    const gpu = await freshGpu();
    const ones = gpu.upload(new Float32Array(300).fill(1), 'ones');
    const y = gpu.createBuffer(300 * 4, 'y');
    gpu.dryRun = true;
    residualForward(gpu, { a: ones, b: ones, y }, { n: 300 });
    await gpu.sync();
    gpu.dryRun = false;
    expect([...(await gpu.readF32(y))].every((v) => v === 0)).toBe(true);
    residualForward(gpu, { a: ones, b: ones, y }, { n: 300 });
    expect([...(await gpu.readF32(y))].every((v) => v === 2)).toBe(true);
  });

  it('reuses bind groups across submits while each dispatch keeps its own uniform values', async () => {
    const gpu = await freshGpu();
    const a = gpu.upload(new Float32Array(100).fill(1), 'a');
    const b = gpu.upload(new Float32Array(100).fill(2), 'b');
    const y = gpu.createBuffer(400, 'y');
    const before = gpu.bindGroupStats;
    residualForward(gpu, { a, b, y }, { n: 100 });
    gpu.flush();
    gpu.clear(y);
    // Same pipeline, buffers and uniform slot (first of the submit), other element count.
    residualForward(gpu, { a, b, y }, { n: 40 });
    const out = await gpu.readF32(y);
    expect(out.slice(0, 40).every((v) => v === 3)).toBe(true);
    expect(out.slice(40).every((v) => v === 0)).toBe(true);
    expect(gpu.bindGroupStats.created - before.created).toBe(1);
    expect(gpu.bindGroupStats.reused - before.reused).toBe(1);

    // Destroying a buffer drops the bind groups that name it.
    const z = gpu.createBuffer(400, 'z');
    residualForward(gpu, { a, b, y: z }, { n: 100 });
    const cached = gpu.bindGroupStats.cached;
    z.destroy();
    expect(gpu.bindGroupStats.cached).toBe(cached - 1);
  });
});
