import type { Gpu } from '../gpu/context';
import { residualForward } from '../kernels/residual';
import type { DeviceInfo, SelfCheckResult } from './api';

/** What the page shows about the device the engine got; empty strings where the browser does not say. */
export function describeDevice(device: GPUDevice): Omit<DeviceInfo, 'state' | 'message' | 'selfCheck'> {
  const info = device.adapterInfo;
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const description = info?.description ?? '';
  const software = Boolean(info?.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe/i.test(`${vendor} ${architecture} ${description}`);
  return {
    vendor,
    architecture,
    description,
    software,
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
    },
    shaderF16: device.features.has('shader-f16'),
  };
}

/**
 * Runs the engine's residual kernel (y = a + b) on a small awkward size (not a multiple of the
 * 256-wide workgroup) and compares the result with the same sum on the CPU. WGSL rounds f32
 * addition correctly, so any real difference means a broken device or driver.
 */
export async function runSelfCheck(gpu: Gpu, count = 1000): Promise<SelfCheckResult> {
  const a = new Float32Array(count);
  const b = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a[i] = Math.sin(i * 0.37) * 100;
    b[i] = (i % 17) - 8.5 + i / 1024;
  }
  const start = performance.now();
  const bufferA = gpu.upload(a, 'self-check a');
  const bufferB = gpu.upload(b, 'self-check b');
  const bufferY = gpu.createBuffer(count * 4, 'self-check y');
  try {
    residualForward(gpu, { a: bufferA, b: bufferB, y: bufferY }, { n: count });
    const y = await gpu.readF32(bufferY, count);
    await gpu.sync();
    const ms = performance.now() - start;

    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < count; i++) {
      const expected = Math.fround(a[i] + b[i]);
      // Written so that NaN counts as a mismatch.
      if (!(Math.abs(y[i] - expected) <= 1e-6 * Math.max(1, Math.abs(expected)))) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    if (mismatches === 0) return { ok: true, count, ms };
    return { ok: false, count, mismatches, index: first, expected: Math.fround(a[first] + b[first]), actual: y[first] };
  } finally {
    bufferA.destroy();
    bufferB.destroy();
    bufferY.destroy();
  }
}
