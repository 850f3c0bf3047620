import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_CONFIGS } from '../../src/bench/configs';
import { parseModelConfig } from '../../src/model/config';

const DIR = path.resolve(__dirname, '../../bench/configs');
const REAL = ['smollm2-135m', 'smollm2-360m', 'smollm2-1.7b', 'qwen2.5-0.5b', 'qwen2.5-1.5b', 'llama3.2-1b', 'tinyllama-1.1b'];

describe('bench/configs: the real config.json files of the models people fine-tune', () => {
  it('every file is built in under its name, and the seven real ones parse', async () => {
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.json'));
    expect(files.map((f) => f.slice(0, -5)).sort()).toEqual(Object.keys(BUILT_IN_CONFIGS).sort());
    for (const name of REAL) {
      const json = JSON.parse(await readFile(path.join(DIR, `${name}.json`), 'utf8'));
      expect(BUILT_IN_CONFIGS[name], name).toEqual(json);
      expect(() => parseModelConfig(json, `${name}.json`), name).not.toThrow();
    }
  });

  it('says what the model cards say', () => {
    const parse = (name: string) => parseModelConfig(BUILT_IN_CONFIGS[name], name);
    expect(parse('smollm2-135m')).toMatchObject({ architecture: 'llama', hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3 });
    expect(parse('smollm2-360m')).toMatchObject({ hiddenSize: 960, numLayers: 32, numHeads: 15, numKvHeads: 5, headDim: 64 });
    expect(parse('smollm2-1.7b')).toMatchObject({ hiddenSize: 2048, numLayers: 24, numKvHeads: 32, ropeTheta: 130000 });
    expect(parse('qwen2.5-0.5b')).toMatchObject({
      architecture: 'qwen2',
      vocabSize: 151936,
      tieWordEmbeddings: true,
      qkvBias: true,
      ropeTheta: 1e6,
      hiddenSize: 896,
      numHeads: 14,
      numKvHeads: 2,
    });
    expect(parse('qwen2.5-1.5b')).toMatchObject({ vocabSize: 151936, hiddenSize: 1536, numLayers: 28, tieWordEmbeddings: true });
    expect(parse('llama3.2-1b')).toMatchObject({
      vocabSize: 128256,
      hiddenSize: 2048,
      headDim: 64,
      numKvHeads: 8,
      tieWordEmbeddings: true,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      eosTokenIds: [128001, 128008, 128009],
    });
    expect(parse('tinyllama-1.1b')).toMatchObject({ tieWordEmbeddings: false, vocabSize: 32000, numKvHeads: 4, intermediateSize: 5632 });
    for (const name of REAL.filter((n) => n !== 'llama3.2-1b')) expect(parse(name).ropeScaling, name).toBeNull();
  });
});
