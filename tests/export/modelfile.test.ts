import { describe, expect, it } from 'vitest';
import { AdapterExportError } from '../../src/export/errors';
import { checkOllamaAdapter, ollamaAdapterSetup, ollamaModelfile, ollamaRunCommands, ollamaSetupText } from '../../src/export/modelfile';
import { expectRefusal } from './helpers';

const plain = { alpha: 16, useRslora: false };

describe('ollamaModelfile', () => {
  it('writes FROM and ADAPTER lines', () => {
    expect(ollamaModelfile({ base: 'smollm2:135m', adapterPath: './my-adapter' })).toBe('FROM smollm2:135m\nADAPTER ./my-adapter\n');
  });

  it('refuses values that would add Modelfile instructions', async () => {
    await expectRefusal(
      () => ollamaModelfile({ base: 'llama3.2\nSYSTEM hi', adapterPath: './a' }),
      AdapterExportError,
      'must be one non-empty line',
    );
    await expectRefusal(() => ollamaModelfile({ base: 'x', adapterPath: ' ' }), AdapterExportError, 'adapterPath');
  });
});

describe('ollamaAdapterSetup', () => {
  const setup = (
    opts: Partial<Parameters<typeof ollamaAdapterSetup>[0]> &
      Pick<Parameters<typeof ollamaAdapterSetup>[0], 'architecture' | 'adapterKind' | 'lora'>,
  ) => ollamaAdapterSetup({ baseModel: 'smollm2:135m', adapterPath: './my-adapter', commands: ollamaRunCommands('my-model'), ...opts });

  it('gives the exact commands and the Modelfile for a llama PEFT folder', () => {
    const peft = setup({ architecture: 'llama', adapterKind: 'peft', lora: plain });
    expect(peft.modelfile).toBe('FROM smollm2:135m\nADAPTER ./my-adapter\n');
    expect(peft.commands).toEqual(['ollama create my-model -f Modelfile', 'ollama run my-model']);
    const text = ollamaSetupText(peft);
    expect(text).toContain('FROM smollm2:135m\nADAPTER ./my-adapter\n');
    expect(text).toContain('\nollama create my-model -f Modelfile\nollama run my-model\n');
    expect(text).toContain('ADAPTER names the folder, not the .safetensors file');
    expect(text).toContain('only for llama-architecture bases');
    expect(text).toContain('whole number');
  });

  it('explains the GGUF path, the one for Qwen2', () => {
    const gguf = setup({
      architecture: 'qwen2',
      adapterKind: 'gguf',
      baseModel: 'qwen2.5:0.5b',
      adapterPath: './adapter.gguf',
      lora: { alpha: 12.5, useRslora: true },
    });
    const text = ollamaSetupText(gguf);
    expect(text).toContain('FROM qwen2.5:0.5b\nADAPTER ./adapter.gguf\n');
    expect(text).toContain('ollama create my-model -f Modelfile');
    expect(text).toContain('for this Qwen2 base the GGUF adapter is the one to use');
    expect(
      setup({ architecture: 'llama', adapterKind: 'gguf', adapterPath: '/abs/a.gguf', baseModel: 'b', lora: plain }).modelfile,
    ).toContain('ADAPTER /abs/a.gguf\n');
  });

  it('refuses PEFT folders Ollama would reject or scale wrongly, pointing to the GGUF adapter', async () => {
    const refused = setup({ adapterKind: 'peft', architecture: 'qwen2', lora: plain });
    expect(refused.modelfile).toBeNull();
    expect(refused.commands).toEqual([]);
    expect(ollamaSetupText(refused)).toContain('Ollama cannot take this export');
    await expectRefusal(
      () => checkOllamaAdapter({ adapterKind: 'peft', architecture: 'qwen2', lora: plain }),
      AdapterExportError,
      'only for llama-architecture bases',
      'this base is qwen2',
      'Export the GGUF adapter',
    );
    await expectRefusal(
      () => checkOllamaAdapter({ adapterKind: 'peft', architecture: 'llama', lora: { alpha: 12.5, useRslora: false } }),
      AdapterExportError,
      'lora_alpha is 12.5',
      'whole number',
      'Export the GGUF adapter',
      'whole-number alpha',
    );
    expect(setup({ adapterKind: 'peft', architecture: 'llama', lora: { alpha: 12.5, useRslora: false } }).notes.join(' ')).toMatch(
      /lora_alpha is 12.5/,
    );
    await expectRefusal(
      () => checkOllamaAdapter({ architecture: 'llama', adapterKind: 'peft', lora: { alpha: 16, useRslora: true } }),
      AdapterExportError,
      'rsLoRA',
      'ignores use_rslora',
    );
    expect(() => checkOllamaAdapter({ architecture: 'qwen2', adapterKind: 'gguf', lora: { alpha: 0.5, useRslora: true } })).not.toThrow();
  });
});
