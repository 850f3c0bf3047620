import { describe, expect, it } from 'vitest';
import { EngineStateError } from '../../src/app/errors';
import { TaskGuard } from '../../src/app/tasks';

describe('task guard', () => {
  it('runs one task at a time and names the busy one', async () => {
    const tasks = new TaskGuard();
    let release!: () => void;
    const running = tasks.exclusive('evaluating', () => new Promise<void>((resolve) => (release = resolve)));
    await expect(tasks.exclusive('training', async () => 1)).rejects.toThrow(EngineStateError);
    await expect(tasks.exclusive('training', async () => 1)).rejects.toThrow('webtune is busy evaluating');
    release();
    await running;
    expect(await tasks.exclusive('training', async () => 2)).toBe(2);
  });

  it('passes pause and stop to a running training only, and starts each training with continue', async () => {
    const tasks = new TaskGuard();
    tasks.request('pause');
    expect(tasks.control()).toBe('continue');
    await tasks.exclusive('training', async () => {
      tasks.request('stop');
      expect(tasks.control()).toBe('stop');
    });
    await tasks.exclusive('training', async () => expect(tasks.control()).toBe('continue'));
    await tasks.exclusive('generating text', async () => {
      tasks.request('pause');
      expect(tasks.control()).toBe('continue');
    });
  });
});
