import { existsSync } from 'node:fs';
import { requestDeviceWithAdapterLimits } from './device';

/** Where Debian's chromium package puts SwiftShader, the CPU Vulkan used on machines without a GPU. */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Device nodes of real GPUs (DRM render nodes, NVIDIA, WSL). Mesa's CPU drivers don't count. */
const GPU_DEVICE_NODES = ['/dev/dri/renderD128', '/dev/nvidia0', '/dev/dxg'];

/**
 * Dawn instances created by `webgpu`'s `create()`. They must stay referenced while their devices
 * live (the package's "Lifetime" rule): once garbage-collected, Dawn frees the instance under the
 * device and the process dies in ProcessEvents with futex or mutex errors.
 */
const liveInstances: unknown[] = [];

/**
 * A WebGPU device in Node through Dawn (the `webgpu` package). With no GPU on the machine, Dawn is pointed at SwiftShader from the
 * chromium install; `WEBTUNE_GPU=swiftshader` forces it even where a real GPU exists (deterministic tests).
 */
export async function createNodeDevice(): Promise<GPUDevice> {
  const driverChosen = process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES;
  const noSystemDriver = !GPU_DEVICE_NODES.some((node) => existsSync(node));
  if (existsSync(SWIFTSHADER_ICD) && (process.env.WEBTUNE_GPU === 'swiftshader' || (!driverChosen && noSystemDriver))) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create([]);
  liveInstances.push(gpu);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  return requestDeviceWithAdapterLimits(adapter);
}
