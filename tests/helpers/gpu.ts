import { Gpu } from '../../src/gpu/context';
import { createNodeDevice } from '../../src/gpu/node-device';

let shared: Promise<Gpu> | null = null;

/** One real WebGPU device (Dawn; SwiftShader on machines without a GPU) per test worker. */
export function testGpu(): Promise<Gpu> {
  shared ??= createNodeDevice().then((device) => new Gpu(device));
  return shared;
}
