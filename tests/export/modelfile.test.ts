import { describe, expect, it } from 'vitest';
import { AdapterExportError } from '../../src/export/errors';
import { checkOllamaAdapter, ollamaInstructions, ollamaModelfile } from '../../src/export/modelfile';
import { expectRefusal } from './helpers';

const plain = { alpha: 16, useRslora: false };

describe('ollamaModelfile', () => {
  it('writes FROM and ADAPTER lines', () => {
    expect(ollamaModelfile({ base: 'smollm2:135m', adapterPath: './my-adapter' })).toBe('FROM smollm2:135m\nADAPTER ./my-adapter\n');
  });

  it('refuses values that would add Modelfile instructions', async () => {
    await expectRefusal(() => ollamaModelfile({ base: 'llama3.2\nSYSTEM hi', adapterPath: './a' }), AdapterExportError, 'must be one non-empty line');
    await expectRefusal(() => ollamaModelfile({ base: 'x', adapterPath: ' ' }), AdapterExportError, 'adapterPath');
  });
});

describe('ollamaInstructions', () => {
  it('gives the exact commands and the Modelfile for a llama PEFT folder', () => {
    const text = ollamaInstructions({ architecture: 'llama', adapterKind: 'peft', folderName: 'my-adapter', baseModel: 'smollm2:135m', lora: plain });
    expect(text).toContain('FROM smollm2:135m\nADAPTER ./my-adapter\n');
    expect(text).toContain('\nollama create my-model -f Modelfile\nollama run my-model\n');
    expect(text).toContain('ADAPTER names the folder, not the .safetensors file');
    expect(text).toContain('only for llama-architecture bases');
    expect(text).toContain('whole number');
  });

  it('explains the GGUF path, the one for Qwen2', () => {
    const text = ollamaInstructions({ architecture: 'qwen2', adapterKind: 'gguf', folderName: 'adapter.gguf', baseModel: 'qwen2.5:0.5b', lora: { alpha: 12.5, useRslora: true } });
    expect(text).toContain('FROM qwen2.5:0.5b\nADAPTER ./adapter.gguf\n');
    expect(text).toContain('ollama create my-model -f Modelfile');
    expect(text).toContain('for this Qwen2 base the GGUF adapter is the one to use');
    expect(ollamaInstructions({ architecture: 'llama', adapterKind: 'gguf', folderName: '/abs/a.gguf', baseModel: 'b', lora: plain })).toContain('ADAPTER /abs/a.gguf\n');
  });

  it('refuses PEFT folders Ollama would reject or scale wrongly, pointing to the GGUF adapter', async () => {
    const peft = { adapterKind: 'peft' as const, folderName: 'a', baseModel: 'b' };
    await expectRefusal(
      () => ollamaInstructions({ ...peft, architecture: 'qwen2', lora: plain }),
      AdapterExportError,
      'only for llama-architecture bases',
      'this base is qwen2',
      'Export the GGUF adapter',
    );
    await expectRefusal(
      () => ollamaInstructions({ ...peft, architecture: 'llama', lora: { alpha: 12.5, useRslora: false } }),
      AdapterExportError,
      'lora_alpha is 12.5',
      'whole number',
      'Export the GGUF adapter',
      'whole-number alpha',
    );
    await expectRefusal(() => checkOllamaAdapter({ architecture: 'llama', adapterKind: 'peft', lora: { alpha: 16, useRslora: true } }), AdapterExportError, 'rsLoRA', 'ignores use_rslora');
    expect(() => checkOllamaAdapter({ architecture: 'qwen2', adapterKind: 'gguf', lora: { alpha: 0.5, useRslora: true } })).not.toThrow();
  });
});
