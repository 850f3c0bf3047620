import { GpuLimitError, WebGpuUnavailableError } from './errors';

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

/**
 * Requests a device with every limit raised to what the adapter really offers: the defaults
 * (128 MiB bindings, 16 KiB workgroup storage) are far below what real GPUs allow, and large
 * models need the real figures.
 */
export async function requestDeviceWithAdapterLimits(adapter: GPUAdapter | null): Promise<GPUDevice> {
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'No WebGPU adapter is available. Use a browser with WebGPU enabled (Chrome or Edge 113+, ' +
        'Safari 26+, Firefox 141+ on Windows) on a machine with a supported GPU driver.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') requiredLimits[key] = value;
  }
  // Optional features the engine uses where offered: subgroup row reductions (src/kernels/rmsnorm.ts)
  // and per-dispatch GPU timings for the benchmark (src/gpu/timestamps.ts).
  const requiredFeatures = OPTIONAL_FEATURES.filter((feature) => adapter.features.has(feature));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  if (device.limits.maxStorageBuffersPerShaderStage < 8) {
    throw new GpuLimitError(
      `This GPU allows only ${device.limits.maxStorageBuffersPerShaderStage} storage buffers per shader stage; webtune needs 8.`,
    );
  }
  return device;
}
