import { describe, expect, it } from 'vitest';
import { generate } from '../../src/eval/generate';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { openModel } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';

describe('greedy generation with the pretrained stories260K', () => {
  it('continues "Once upon a time" exactly as the reference implementation does', async () => {
    const opened = await openModel(nodeFileSource(STORIES_260K));
    const tokenizer = TextTokenizer.fromJson(opened.tokenizerJson, opened.tokenizerConfig);
    const model = await LlamaModel.load(await testGpu(), opened.weights);
    const result = await generate(model, tokenizer, null, 'Once upon a time', { maxNewTokens: 27, temperature: 0 });
    expect(result.ids).toHaveLength(27);
    expect(result.text).toBe(', there was a little girl named Lily. She loved to play outside in the park.');
  });
});
