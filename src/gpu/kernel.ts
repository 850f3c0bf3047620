import { KernelArgumentError } from './errors';
import type { EntryInterface, ParamField, ShaderInterface } from './shader-interface';

/** A storage binding: a whole buffer or a byte range of one (offsets 256-byte aligned). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/** Uniform values by `struct Params` field name; the WGSL type of each field says how it is packed. */
export type KernelParams = Readonly<Record<string, number>>;

/** Values of a shader's `override` constants by name, fixed when the pipeline is created. */
export type KernelConstants = Readonly<Record<string, number>>;

/** One dispatch of a kernel. */
export interface KernelCall {
  /** Exactly the `struct Params` fields the entry point reads, by name. */
  params: KernelParams;
  /**
   * Exactly the storage buffers the entry point uses, by the shader's variable names; an
   * `undefined` value counts as not given (an optional input such as a bias, for an entry point
   * that does not read it).
   */
  bindings: Readonly<Record<string, Binding | undefined>>;
  workgroups: readonly [number, number?, number?];
}

export interface BindGroupEntry {
  binding: number;
  resource: { buffer: GPUBuffer; offset: number; size: number };
}

const U32_MAX = 0xffffffff;

/**
 * One compute entry point compiled on one device, with what its shader says it reads. Made by
 * `Gpu.kernel` and dispatched with `Gpu.dispatch`, which checks every call against it before it
 * records anything.
 */
export class Kernel {
  /** Bytes of the uniform block: 4 per field of the whole struct, padded to 16. */
  readonly uniformBytes: number;

  constructor(
    /** The entry point: names the kernel in errors, validation messages and profiles. */
    readonly name: string,
    readonly pipeline: GPUComputePipeline,
    private readonly shader: ShaderInterface,
    readonly uses: EntryInterface,
    /** The override constants this pipeline was created with. */
    readonly constants: KernelConstants = {},
  ) {
    this.uniformBytes = Math.max(16, Math.ceil((shader.fields.length * 4) / 16) * 16);
  }

  /**
   * Throws KernelArgumentError for a field or binding the entry point does not read, one it reads
   * that is missing, or a value its type cannot hold.
   */
  check(call: KernelCall): void {
    const { params, storage } = this.uses;
    for (const name in call.params) {
      if (params.has(name)) continue;
      const declared = this.shader.fields.some((field) => field.name === name);
      throw new KernelArgumentError(
        this.name,
        name,
        declared
          ? `it does not read the field "${name}" of struct Params; pass only ${listFields(params)}`
          : `struct Params has no field "${name}"; pass ${listFields(params)}`,
      );
    }
    for (const field of params.values()) checkValue(this.name, field, call.params[field.name]);
    for (const name in call.bindings) {
      if (call.bindings[name] === undefined || storage.has(name)) continue;
      throw new KernelArgumentError(
        this.name,
        name,
        this.shader.storage.has(name)
          ? `it does not use the storage binding "${name}"; bind only ${[...storage.keys()].join(', ')}`
          : `the shader has no storage binding "${name}"; bind ${[...storage.keys()].join(', ')}`,
      );
    }
    for (const name of storage.keys()) {
      if (!call.bindings[name]) throw new KernelArgumentError(this.name, name, `the storage binding "${name}" is missing`);
    }
  }

  /** Writes a checked call's uniform values into `view` at their struct offsets; unread fields keep what they held. */
  pack(params: KernelParams, view: DataView): void {
    for (const { name, type, index } of this.uses.params.values()) {
      const value = params[name];
      if (type === 'f32') view.setFloat32(index * 4, value, true);
      else if (type === 'u32') view.setUint32(index * 4, value, true);
      else view.setInt32(index * 4, value, true);
    }
  }

  /** Appends the storage entries of a checked call to `entries`, in binding order. */
  storageEntries(bindings: KernelCall['bindings'], entries: BindGroupEntry[]): BindGroupEntry[] {
    for (const [name, index] of this.uses.storage) entries.push({ binding: index, resource: asRange(bindings[name]!) });
    return entries;
  }
}

/**
 * Throws KernelArgumentError for an override constant the entry point does not use, one it needs
 * (declared without a default) that is missing, or a value its type cannot hold.
 */
export function checkConstants(kernel: string, shader: ShaderInterface, uses: EntryInterface, constants: KernelConstants): void {
  for (const name in constants) {
    if (uses.overrides.has(name)) continue;
    const used = [...uses.overrides.keys()].join(', ') || 'none';
    throw new KernelArgumentError(
      kernel,
      name,
      shader.overrides.has(name)
        ? `it does not use the override constant "${name}"; set only ${used}`
        : `the shader declares no override constant "${name}"; it uses ${used}`,
    );
  }
  for (const { name, type, required } of uses.overrides.values()) {
    const value = constants[name];
    if (value === undefined && !required) continue;
    if (value === undefined)
      throw new KernelArgumentError(kernel, name, `the ${type} override constant "${name}" has no default and is not set`);
    if (!fits(type, value))
      throw new KernelArgumentError(kernel, name, `the ${type} override constant "${name}" cannot hold ${String(value)}`);
  }
}

function checkValue(kernel: string, { name, type }: ParamField, value: number | undefined): void {
  if (value === undefined) throw new KernelArgumentError(kernel, name, `the ${type} field "${name}" of struct Params is missing`);
  if (!fits(type, value)) throw new KernelArgumentError(kernel, name, `the ${type} field "${name}" cannot hold ${String(value)}`);
}

function fits(type: ParamField['type'], value: number): boolean {
  return (
    typeof value === 'number' &&
    (type === 'f32' ||
      (Number.isInteger(value) && (type === 'u32' ? value >= 0 && value <= U32_MAX : value >= -(2 ** 31) && value < 2 ** 31)))
  );
}

function listFields(params: ReadonlyMap<string, ParamField>): string {
  return params.size ? [...params.values()].map(({ name, type }) => `${name} (${type})`).join(', ') : 'no fields';
}

export function asRange(binding: Binding): { buffer: GPUBuffer; offset: number; size: number } {
  return 'offset' in binding ? binding : { buffer: binding, offset: 0, size: binding.size };
}
