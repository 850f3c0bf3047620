import { describe, expect, it } from 'vitest';
import type { DatasetSummary, ModelInfo } from '../../src/app/api';
import type { AppState } from '../../src/ui/app';
import { shareableSetup } from '../../src/ui/views/share';
import { validateTrainSettings } from '../../src/train/settings';

const model = (source: ModelInfo['source'], name: string, url?: string) => ({ source, name, url }) as ModelInfo;
const dataset = (id: string, name: string, source?: string) =>
  ({ id, name, rowCount: 3, sourceFileName: `${name}.jsonl`, ...(source ? { source } : {}) }) as DatasetSummary;

function state(patch: Partial<AppState>): AppState {
  return {
    datasets: [],
    trainDatasetId: null,
    evalDatasetId: null,
    preset: null,
    settings: validateTrainSettings({}),
    model: null,
    ...patch,
  } as AppState;
}

describe('Copy share link', () => {
  it('puts a Hub model and downloaded datasets in the link', () => {
    const { setup, unshareable } = shareableSetup(
      state({
        model: model('hub', 'org/name'),
        datasets: [dataset('a', 'train', 'url:https://x.example/t.jsonl'), dataset('b', 'eval', 'hub:org/data:test')],
        trainDatasetId: 'a',
        evalDatasetId: 'b',
      }),
    );
    expect(unshareable).toEqual([]);
    expect(setup).toMatchObject({
      model: { kind: 'hub', id: 'org/name' },
      train: 'url:https://x.example/t.jsonl',
      eval: 'hub:org/data:test',
    });
  });

  it('says which parts cannot travel: a local folder and a dataset from a file', () => {
    const { setup, unshareable } = shareableSetup(
      state({ model: model('local', 'stories260K'), datasets: [dataset('a', 'zog', undefined)], trainDatasetId: 'a' }),
    );
    expect(setup.model).toBeNull();
    expect(setup.train).toBeNull();
    expect(unshareable).toEqual([
      'the model "stories260K" was loaded from a local folder; put it on the Hub or a web server to share it',
      'the training data "zog" was imported from a file (zog.jsonl); import it from a URL or the Hub to share it',
    ]);
  });
});
