import { describe, expect, it } from 'vitest';
import { decodeShareLink, encodeShareLink, isShareFragment, type SharedSetup, ShareLinkError } from '../../src/site/share-link';
import { validateTrainSettings } from '../../src/train/settings';

const ORIGIN = 'https://site.example';

const setup: SharedSetup = {
  model: { kind: 'hub', id: 'webtune-test/stories260K' },
  train: 'url:https://data.example/zog_stories_train.jsonl',
  eval: 'hub:owner/zog:test',
  preset: { id: 'rag_enhanced', minResponseChars: 40, maxResponseChars: 800 },
  settings: validateTrainSettings({ lr: 5e-3, epochs: 4, maxLength: 32, evalEvery: 6, lora: { r: 8, alpha: 16, dropout: 0.05 } }),
};

describe('share links', () => {
  it('round-trip a setup through a readable fragment', () => {
    const hash = encodeShareLink(setup);
    expect(hash).toMatch(/^#webtune=1&model=hub:webtune-test\/stories260K&train=url:https:\/\/data\.example\/zog_stories_train\.jsonl&/);
    expect(hash).toContain('&targets=q_proj,k_proj,v_proj&');
    expect(isShareFragment(hash)).toBe(true);
    expect(decodeShareLink(hash, ORIGIN)).toEqual(setup);
    const url = { ...setup, model: { kind: 'url' as const, url: `${ORIGIN}/demo/stories260K/` }, preset: null, eval: null };
    expect(decodeShareLink(encodeShareLink(url), ORIGIN)).toEqual(url);
  });

  it('fill unnamed settings with the defaults', () => {
    expect(decodeShareLink('#webtune=1&model=hub:a/b', ORIGIN)).toEqual({
      model: { kind: 'hub', id: 'a/b' },
      train: null,
      eval: null,
      preset: null,
      settings: validateTrainSettings({}),
    });
  });

  it.each([
    ['#webtune=2&model=hub:a/b', 'made by a newer webtune (format 2)'],
    ['#webtune=x', 'its format "x" is not one this webtune reads'],
    ['#webtune=1&script=alert(1)', 'unknown field "script"'],
    ['#webtune=1&lr=1&lr=2', 'names "lr" twice'],
    ['#webtune=1&lr=1e3x', '"lr" must be a number, got "1e3x"'],
    ['#webtune=1&epochs=2.5', '"epochs" must be a whole number'],
    ['#webtune=1&epochs=0', 'Training setting "epochs": must be a positive integer, got 0'],
    ['#webtune=1&targets=q_proj,q_proj', 'names a projection twice'],
    ['#webtune=1&targets=q_proj,<img src=x>', 'not one of q_proj'],
    ['#webtune=1&model=url:javascript:alert(1)', 'not an https URL'],
    ['#webtune=1&model=url:http://elsewhere.example/m/', 'not an https URL'],
    ['#webtune=1&model=hub:../../etc', 'is not a Hugging Face model id'],
    ['#webtune=1&train=file:///etc/passwd', '"train" must be "url:https://…" or "hub:owner/name"'],
    ['#webtune=1&train=hub:a/b/../c', 'neither an https URL nor a Hugging Face dataset'],
    ['#webtune=1&preset=Rag!&filter=1-2', '"preset" must be a preset id'],
    ['#webtune=1&preset=rag&filter=9-2', 'minimum above its maximum'],
    [`#webtune=1&model=hub:a/b&x=${'a'.repeat(9000)}`, 'more than 8192'],
  ])('refuse %s', (hash, message) => {
    expect(() => decodeShareLink(hash, ORIGIN)).toThrow(ShareLinkError);
    expect(() => decodeShareLink(hash, ORIGIN)).toThrow(message);
  });
});
