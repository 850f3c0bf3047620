/**
 * The engine's GPU: one device at a time, its self-check, and its loss. A lost device (driver
 * reset, GPU process crash, a tab in the background too long) is replaced by a new one on the
 * next request; whoever holds GPU objects of the old one hears about it through `onReplaced`.
 */
import { Gpu } from '../gpu/context';
import { requestDeviceWithAdapterLimits } from '../gpu/device';
import { GpuDeviceLostError, WebGpuUnavailableError } from '../gpu/errors';
import type { DeviceInfo } from './api';
import { describeDevice, runSelfCheck } from './gpu-check';

/** The browser's WebGPU device, with the adapter's real limits. */
export async function browserDevice(): Promise<GPUDevice> {
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    throw new WebGpuUnavailableError(
      'This browser does not offer WebGPU. Use Chrome or Edge 113+ (on Linux, with WebGPU enabled in chrome://flags), ' +
        'Safari 26+ or Firefox 141+ on Windows.',
    );
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    // Reported as "no adapter" below, with what to do.
  }
  return requestDeviceWithAdapterLimits(adapter);
}

export class DeviceSession {
  readonly #request: () => Promise<GPUDevice>;
  #gpu: Gpu | null = null;
  #lost = false;
  #info: DeviceInfo | null = null;
  readonly #onReplaced: (() => void)[] = [];

  constructor(request: () => Promise<GPUDevice> = browserDevice) {
    this.#request = request;
  }

  /** `listener` runs when a new device takes the place of a lost one: buffers of the old one are gone. */
  onReplaced(listener: () => void): void {
    this.#onReplaced.push(listener);
  }

  /** The device, its limits and its self-check; finds a new device after a loss. Never throws: failures are a state. */
  async describe(): Promise<DeviceInfo> {
    if (this.#gpu && !this.#lost && this.#info) return this.#info;
    try {
      const gpu = await this.gpu();
      const selfCheck = await runSelfCheck(gpu);
      this.#info = {
        ...describeDevice(gpu.device),
        state: selfCheck.ok ? 'ready' : 'failed',
        message: selfCheck.ok ? 'WebGPU works in this browser.' : 'This GPU computed wrong results; training on it would not be reliable.',
        selfCheck,
      };
    } catch (error) {
      this.#info = {
        state: error instanceof WebGpuUnavailableError ? 'unavailable' : 'failed',
        message: error instanceof Error ? error.message : String(error),
        vendor: '',
        architecture: '',
        description: '',
        software: false,
        limits: null,
        shaderF16: false,
        selfCheck: null,
      };
    }
    return this.#info;
  }

  /** The current device, or a new one after a loss. */
  async gpu(): Promise<Gpu> {
    if (this.#gpu && !this.#lost) return this.#gpu;
    const replacing = this.#gpu !== null;
    const device = await this.#request();
    const gpu = new Gpu(device);
    void device.lost.then(() => {
      if (this.#gpu === gpu) this.#lost = true;
    });
    this.#gpu = gpu;
    this.#lost = false;
    this.#info = null;
    if (replacing) for (const listener of this.#onReplaced) listener();
    return gpu;
  }

  /**
   * Whether `error` means the device is gone. A failed readback can reject before `device.lost`
   * resolves, so the loss gets a moment to show. A loss found here is remembered.
   */
  async isLoss(error: unknown): Promise<boolean> {
    const device = this.#gpu?.device;
    const lost =
      error instanceof GpuDeviceLostError ||
      this.#lost ||
      (!!device && (await Promise.race([device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))])));
    if (lost) this.#lost = true;
    return lost;
  }
}
