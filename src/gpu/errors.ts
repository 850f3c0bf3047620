/** Errors raised by the GPU layer. Each message says what happened and what the user can do about it. */

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(readonly reason: string, message: string) {
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
