/**
 * GPU work one at a time: a generation between a training step's forward and backward would
 * overwrite its activations. Also where a pause or stop request waits for the trainer to see it.
 */
import type { TrainControl } from '../train/trainer';
import { EngineStateError } from './errors';

export type Task = 'loading a model' | 'training' | 'generating text' | 'evaluating' | 'removing downloaded files';

export class TaskGuard {
  #busy: Task | null = null;
  #control: TrainControl = 'continue';

  async exclusive<T>(task: Task, body: () => Promise<T>): Promise<T> {
    if (this.#busy) throw new EngineStateError(`webtune is busy ${this.#busy}; wait until it finishes, or pause it.`);
    this.#busy = task;
    if (task === 'training') this.#control = 'continue';
    try {
      return await body();
    } finally {
      this.#busy = null;
    }
  }

  /** Asks the running training to pause or stop after its current optimizer step; ignored when none runs. */
  request(control: Exclude<TrainControl, 'continue'>): void {
    if (this.#busy === 'training') this.#control = control;
  }

  /** What the trainer polls between optimizer steps. */
  readonly control = (): TrainControl => this.#control;
}
