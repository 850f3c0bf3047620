import { Gpu } from '../../src/gpu/context';
import { createNodeDevice } from '../../src/gpu/node-device';

let shared: Promise<Gpu> | null = null;

/** One real WebGPU device (Dawn; SwiftShader on machines without a GPU) per test worker. */
export function testGpu(): Promise<Gpu> {
  shared ??= createNodeDevice().then((device) => new Gpu(device));
  return shared;
}

/**
 * A Gpu on the shared device that reports `limits` in place of the device's own (the device keeps
 * its real limits, which must be at least these): runs a wrapper's choices for a smaller GPU.
 */
export async function testGpuWithLimits(limits: Partial<Record<keyof GPUSupportedLimits, number>>): Promise<Gpu> {
  const shared = await testGpu();
  const merged: Record<string, number> = {};
  for (const key in shared.device.limits) merged[key] = (shared.device.limits as unknown as Record<string, number>)[key];
  Object.assign(merged, limits);
  const device = new Proxy(shared.device, {
    get(target, prop) {
      if (prop === 'limits') return merged;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Gpu(device);
}
