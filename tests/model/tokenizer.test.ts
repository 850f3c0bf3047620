import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/model/errors';
import { TextTokenizer } from '../../src/model/tokenizer';
import { STORIES_DIR } from './helpers';

async function storiesTokenizer(): Promise<TextTokenizer> {
  const json = JSON.parse(await readFile(path.join(STORIES_DIR, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(await readFile(path.join(STORIES_DIR, 'tokenizer_config.json'), 'utf8'));
  return TextTokenizer.fromJson(json, config);
}

describe('TextTokenizer', () => {
  it('encodes like the Python tokenizer', async () => {
    const tok = await storiesTokenizer();
    expect(tok.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encode('Once upon a time', { addSpecialTokens: false })).toEqual([403, 407, 261, 378]);
  });

  it('decodes, keeping or skipping special tokens', async () => {
    const tok = await storiesTokenizer();
    expect(tok.decode([1, 403, 407, 261, 378], { skipSpecialTokens: true })).toBe('Once upon a time');
    expect(tok.decode([1, 403, 407, 261, 378, 2])).toBe('<s> Once upon a time</s>');
    const text = 'The cat sat on the mat. It was happy!';
    expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
  });

  it('knows the special token ids', async () => {
    const tok = await storiesTokenizer();
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
  });

  it('reads special tokens written as AddedToken objects', async () => {
    const json = JSON.parse(await readFile(path.join(STORIES_DIR, 'tokenizer.json'), 'utf8'));
    const tok = TextTokenizer.fromJson(json, { eos_token: { __type: 'AddedToken', content: '</s>' } });
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.bosTokenId).toBeNull();
  });

  it('reports an unusable tokenizer.json', () => {
    expect(() => TextTokenizer.fromJson('not a tokenizer', {})).toThrow(ModelLoadError);
    expect(() => TextTokenizer.fromJson({ model: { type: 'NoSuchModel' } }, {})).toThrow(/tokenizer\.json/);
  });
});
