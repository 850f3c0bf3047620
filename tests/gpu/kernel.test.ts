import { describe, expect, it } from 'vitest';
import rmsnorm from '../../shaders/rmsnorm.wgsl?raw';
import residualSource from '../../shaders/residual.wgsl?raw';
import rowSumWorkgroup from '../../shaders/row-sum-workgroup.wgsl?raw';
import { type Binding, Gpu, type KernelCall } from '../../src/gpu/context';
import { KernelArgumentError, ShaderInterfaceError } from '../../src/gpu/errors';
import { createNodeDevice } from '../../src/gpu/node-device';

const freshGpu = async () => new Gpu(await createNodeDevice());
/** rmsnorm.wgsl needs a row_sum appended, as its wrapper does. */
const rmsnormSource = `${rmsnorm}\n${rowSumWorkgroup}`;

/** Runs `call` and returns the KernelArgumentError it must throw, after checking that nothing was recorded. */
function refused(gpu: Gpu, entry: { source: string; name: string }, call: KernelCall): KernelArgumentError {
  const kernel = gpu.kernel(entry.source, entry.name);
  let observed = 0;
  const stop = gpu.observeDispatches(() => observed++);
  const before = gpu.bindGroupStats;
  try {
    gpu.dispatch(kernel, call);
  } catch (error) {
    expect(error).toBeInstanceOf(KernelArgumentError);
    expect(observed, 'nothing recorded').toBe(0);
    expect(gpu.bindGroupStats).toEqual(before);
    return error as KernelArgumentError;
  } finally {
    stop();
  }
  throw new Error('expected a KernelArgumentError');
}

const PACKING = `
struct Params { count: u32, shift: i32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn pack_params() {
  out[0] = p.count;
  out[1] = bitcast<u32>(p.shift);
  out[2] = bitcast<u32>(p.scale);
}
`;

// WIDTH sizes the workgroup and a workgroup array; SCALE has a default; OTHER is used by another entry point only.
const OVERRIDES = `
struct Params { n: u32 }
override WIDTH: u32;
override SCALE: f32 = 2.0;
override OTHER: u32 = 1u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<workgroup> staged: array<f32, WIDTH>;
fn scaled(i: u32) -> f32 { return f32(i) * SCALE; }
@compute @workgroup_size(WIDTH)
fn fill(@builtin(local_invocation_index) lid: u32) {
  staged[WIDTH - 1u - lid] = scaled(lid);
  workgroupBarrier();
  if (lid < p.n) { out[lid] = staged[lid]; }
}
@compute @workgroup_size(1)
fn other() { out[0] = f32(OTHER); }
`;

describe('named kernel parameters', () => {
  const residual = { source: residualSource, name: 'residual_forward' };

  it('packs each field by the type the WGSL declares', async () => {
    const gpu = await freshGpu();
    const out = gpu.createBuffer(12, 'out');
    gpu.dispatch(gpu.kernel(PACKING, 'pack_params'), {
      params: { scale: -0.375, count: 4_000_000_000, shift: -7 },
      bindings: { out },
      workgroups: [1],
    });
    const words = new Uint32Array(await gpu.read(out, 12));
    expect(words[0]).toBe(4_000_000_000);
    expect(new Int32Array(words.buffer)[1]).toBe(-7);
    expect(new Float32Array(words.buffer)[2]).toBe(-0.375);
  });

  it('refuses a misnamed, a missing and an extra field, naming the kernel and the field', async () => {
    const gpu = await freshGpu();
    const buffers = { a: gpu.createBuffer(16, 'a'), b: gpu.createBuffer(16, 'b'), y: gpu.createBuffer(16, 'y') };
    const call = (params: Record<string, number>): KernelCall => ({ params, bindings: buffers, workgroups: [1] });

    const misnamed = refused(gpu, residual, call({ count: 4 }));
    expect(misnamed).toMatchObject({ kernel: 'residual_forward', field: 'count' });
    expect(misnamed.message).toMatch(/residual_forward.*no field "count".*n \(u32\)/);

    const missing = refused(gpu, residual, call({}));
    expect(missing).toMatchObject({ kernel: 'residual_forward', field: 'n' });
    expect(missing.message).toMatch(/residual_forward.*"n".*missing/);

    const extra = refused(gpu, residual, call({ n: 4, alpha: 1 }));
    expect(extra).toMatchObject({ kernel: 'residual_forward', field: 'alpha' });
    expect(extra.message).toMatch(/residual_forward.*no field "alpha"/);

    // Declared in struct Params but not read by this entry point.
    const rstd = gpu.createBuffer(16, 'rstd');
    const unread = refused(
      gpu,
      { source: rmsnormSource, name: 'rmsnorm_backward_accumulate_rows' },
      {
        params: { M: 1, C: 4, eps: 1e-5 },
        bindings: { x: buffers.a, w: buffers.b, dy: buffers.a, rstd_saved: rstd, dx: buffers.y },
        workgroups: [1],
      },
    );
    expect(unread).toMatchObject({ kernel: 'rmsnorm_backward_accumulate_rows', field: 'eps' });
    expect(unread.message).toMatch(/does not read the field "eps"/);
  });

  it('refuses values the field type cannot hold', async () => {
    const gpu = await freshGpu();
    const bindings = { a: gpu.createBuffer(16, 'a'), b: gpu.createBuffer(16, 'b'), y: gpu.createBuffer(16, 'y') };
    for (const n of [-1, 2.5, 2 ** 32, NaN]) {
      const error = refused(gpu, residual, { params: { n }, bindings, workgroups: [1] });
      expect(error).toMatchObject({ kernel: 'residual_forward', field: 'n' });
      expect(error.message).toContain(`cannot hold ${n}`);
    }
  });

  it('refuses a misnamed, a missing and an unused storage binding', async () => {
    const gpu = await freshGpu();
    const a: Binding = gpu.createBuffer(16, 'a');
    const b = gpu.createBuffer(16, 'b');
    const y = gpu.createBuffer(16, 'y');
    const params = { n: 4, start: 0 };
    expect(refused(gpu, residual, { params, bindings: { a, b, out: y }, workgroups: [1] })).toMatchObject({ field: 'out' });
    expect(refused(gpu, residual, { params, bindings: { a, b }, workgroups: [1] })).toMatchObject({ field: 'y' });
    const unused = refused(
      gpu,
      { source: rmsnormSource, name: 'rmsnorm_forward_rows' },
      { params: { M: 1, C: 4, eps: 1e-5 }, bindings: { x: a, w: b, y, rstd: b, dx: y }, workgroups: [1] },
    );
    expect(unused).toMatchObject({ kernel: 'rmsnorm_forward_rows', field: 'dx' });
    expect(unused.message).toMatch(/does not use the storage binding "dx"/);
    // An undefined binding counts as not given.
    gpu.dispatch(gpu.kernel(residualSource, 'residual_forward'), { params, bindings: { a, b, y, bias: undefined }, workgroups: [1] });
    await gpu.sync();
  });

  it('creates one pipeline per set of override constants and checks them by name', async () => {
    const gpu = await freshGpu();
    const out = gpu.createBuffer(8 * 4, 'out');
    const run = async (constants: Record<string, number>) => {
      const kernel = gpu.kernel(OVERRIDES, 'fill', constants);
      gpu.dispatch(kernel, { params: { n: 8 }, bindings: { out }, workgroups: [1] });
      return { kernel, values: Array.from(await gpu.readF32(out, constants.WIDTH)) };
    };
    const four = await run({ WIDTH: 4 });
    expect(four.values).toEqual([6, 4, 2, 0]);
    const eight = await run({ SCALE: 0.5, WIDTH: 8 });
    expect(eight.values).toEqual([3.5, 3, 2.5, 2, 1.5, 1, 0.5, 0]);
    expect(eight.kernel).not.toBe(four.kernel);
    expect(gpu.kernel(OVERRIDES, 'fill', { WIDTH: 8, SCALE: 0.5 })).toBe(eight.kernel);
    expect(eight.kernel.constants).toEqual({ SCALE: 0.5, WIDTH: 8 });

    const refusedConstants = (entry: string, constants?: Record<string, number>) => {
      try {
        gpu.kernel(OVERRIDES, entry, constants);
      } catch (error) {
        expect(error).toBeInstanceOf(KernelArgumentError);
        return error as KernelArgumentError;
      }
      throw new Error('expected a KernelArgumentError');
    };
    expect(refusedConstants('fill')).toMatchObject({ kernel: 'fill', field: 'WIDTH' });
    expect(refusedConstants('fill').message).toMatch(/"WIDTH" has no default/);
    expect(refusedConstants('fill', { WIDTH: 4, OTHER: 2 }).message).toMatch(
      /does not use the override constant "OTHER"; set only WIDTH, SCALE/,
    );
    expect(refusedConstants('fill', { WIDTH: 4, HEIGHT: 2 }).message).toMatch(/declares no override constant "HEIGHT"/);
    expect(refusedConstants('fill', { WIDTH: -4 }).message).toMatch(/u32 override constant "WIDTH" cannot hold -4/);
    expect(refusedConstants('other', { WIDTH: 4 })).toMatchObject({ kernel: 'other', field: 'WIDTH' });
    gpu.dispatch(gpu.kernel(OVERRIDES, 'other', { OTHER: 5 }), { params: {}, bindings: { out }, workgroups: [1] });
    expect((await gpu.readF32(out, 1))[0]).toBe(5);
  });

  it('refuses a shader that breaks the conventions when its kernel is created', async () => {
    const gpu = await freshGpu();
    const create =
      (source: string, entry = 'k') =>
      () =>
        gpu.kernel(source, entry);
    const body = '@group(0) @binding(1) var<storage, read_write> out: array<f32>;\n@compute @workgroup_size(1) fn k() { out[0] = p.x; }';
    expect(create(PACKING, 'no_such_entry')).toThrow(ShaderInterfaceError);
    expect(create(PACKING, 'no_such_entry')).toThrow(/no_such_entry.*pack_params/);
    const uniform = '@group(0) @binding(0) var<uniform> p: Params;';
    expect(create(`struct Params { x: vec4f }\n${uniform}\n${body}`)).toThrow(/"x: vec4f"/);
    expect(create(`struct Params { x: f32 }\n${body}`)).toThrow(/var<uniform> p: Params/);
    expect(create(`struct Params { y: f32 }\n${uniform}\n${body}`)).toThrow(/reads p\.x/);
    const shadowing = `struct Params { x: f32 }\n${uniform}\n${body.replace('out[0]', 'let out = 1.0; _ = out; _')}`;
    expect(create(shadowing)).toThrow(/shadows/);
    const copied = `struct Params { x: f32 }\n${uniform}\n${body.replace('out[0] = p.x', 'let q = p; out[0] = q.x')}`;
    expect(create(copied)).toThrow(/uses p other than as p\.<field>/);
    expect(create(`override N = 4u;\nstruct Params { x: f32 }\n${uniform}\n${body}`)).toThrow(/must declare its type/);
  });
});
