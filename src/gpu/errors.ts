/** Errors raised by the GPU layer. Each message says what happened and what the user can do about it. */

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(
      `The GPU device was lost (${reason}): ${message}. Stored data is intact; ` +
        'reload the page or restart the command to continue from the last checkpoint.',
    );
  }
}

export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
}

export class GpuLimitError extends Error {
  override name = 'GpuLimitError';
}

/** A shader breaks the interface conventions (docs/CONVENTIONS.md): a bug in the shader, found when its kernel is first created. */
export class ShaderInterfaceError extends Error {
  override name = 'ShaderInterfaceError';
  constructor(
    readonly kernel: string,
    problem: string,
  ) {
    super(`Kernel ${kernel}: ${problem}.`);
  }
}

/**
 * A wrapper gave a kernel a uniform field or binding its shader does not declare, left one out,
 * or gave a value its WGSL type cannot hold: a bug in the wrapper, reported before anything is recorded.
 */
export class KernelArgumentError extends Error {
  override name = 'KernelArgumentError';
  constructor(
    readonly kernel: string,
    readonly field: string,
    problem: string,
  ) {
    super(`Kernel ${kernel}: ${problem}.`);
  }
}
