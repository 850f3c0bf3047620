import { describe, expect, it } from 'vitest';
import { DeviceSession } from '../../src/app/device';
import { GpuDeviceLostError, WebGpuUnavailableError } from '../../src/gpu/errors';
import { createNodeDevice } from '../../src/gpu/node-device';

describe('device session', () => {
  it('describes a working device with its limits and a passed self-check', async () => {
    const info = await new DeviceSession(createNodeDevice).describe();
    expect(info).toMatchObject({ state: 'ready', software: true, selfCheck: { ok: true, count: 1000 } });
    expect(info.limits!.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('reports a missing WebGPU as a state with the reason, not an exception', async () => {
    const info = await new DeviceSession(async () => {
      throw new WebGpuUnavailableError('no WebGPU in this test');
    }).describe();
    expect(info).toMatchObject({ state: 'unavailable', message: 'no WebGPU in this test', limits: null, selfCheck: null });
  });

  it('replaces a lost device with a new one and tells the holders of GPU objects', async () => {
    const devices: GPUDevice[] = [];
    const session = new DeviceSession(async () => {
      devices.push(await createNodeDevice());
      return devices.at(-1)!;
    });
    let replaced = 0;
    session.onReplaced(() => replaced++);
    const first = await session.gpu();
    expect(await session.gpu()).toBe(first);
    expect(await session.isLoss(new Error('an ordinary failure'))).toBe(false);
    devices[0].destroy();
    await devices[0].lost;
    expect(await session.isLoss(new Error('a readback failed'))).toBe(true);
    const second = await session.gpu();
    expect(second).not.toBe(first);
    expect(replaced).toBe(1);
    expect((await session.describe()).state).toBe('ready');
    expect(await session.isLoss(new GpuDeviceLostError('destroyed', 'test'))).toBe(true);
  });
});
