import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from './errors';

/** tokenizer_config.json writes special tokens either as plain strings or as serialised AddedToken objects. */
function specialTokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * The model's tokenizer (tokenizer.json + tokenizer_config.json), through @huggingface/tokenizers,
 * which matches the Python library. Special-token ids come from tokenizer_config.json; the
 * model config's eos ids (ModelConfig.eosTokenIds) may list more stop tokens.
 */
export class TextTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly bosTokenId: number | null,
    readonly eosTokenIds: number[],
  ) {}

  static fromJson(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>): TextTokenizer {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null) {
      throw new ModelLoadError('tokenizer.json is not a JSON object; download it again.');
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new ModelLoadError(
        `tokenizer.json could not be loaded (${(err as Error).message}); ` +
          'the file is damaged or uses a tokenizer type that is not supported.',
      );
    }
    const idOf = (key: string): number | null => {
      const text = specialTokenText(tokenizerConfig[key]);
      return text === null ? null : (tokenizer.token_to_id(text) ?? null);
    };
    const eos = idOf('eos_token');
    return new TextTokenizer(tokenizer, idOf('bos_token'), eos === null ? [] : [eos]);
  }

  /** Token ids; special tokens (e.g. BOS) are added as the tokenizer's post-processor says unless turned off. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }
}
