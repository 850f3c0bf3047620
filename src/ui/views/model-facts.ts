/**
 * What the model step shows about the loaded model: sizes, and for a GGUF its quantization mix
 * (tensors and bytes per ggml type), file size and where its tokenizer came from, with the reasons
 * it may tokenize differently from llama.cpp and what to do about it.
 */
import type { ModelInfo } from '../../app/api';
import { el, formatBytes, formatCount } from '../dom';

function quantizationText(model: ModelInfo): string {
  return (model.quantization ?? [])
    .map((q) => `${q.type}: ${q.tensors} tensor${q.tensors === 1 ? '' : 's'}, ${formatBytes(q.bytes)}`)
    .join(' · ');
}

function tokenizerText(model: ModelInfo): string {
  if (!model.tokenizerOk) return 'Not working';
  if (model.format === 'hf') return 'OK';
  if (model.tokenizerSource === 'tokenizer.json') return 'From the tokenizer.json added beside the GGUF';
  return model.tokenizerProblems.length ? 'From the GGUF, not exactly as llama.cpp' : "From the GGUF, exactly as llama.cpp's";
}

export function modelFacts(model: ModelInfo): HTMLElement[] {
  const gguf = model.format === 'gguf';
  const facts: [string, string, string][] = [
    ['Model', model.name, 'model-name'],
    ['Architecture', model.architecture, 'model-architecture'],
    ['Format', gguf ? 'GGUF' : 'Hugging Face (safetensors)', 'model-format'],
    ['Parameters', `${formatCount(model.parameterCount)} (${model.parameterCount.toLocaleString('en-US')})`, 'model-params'],
    ['Layers', String(model.layers), 'model-layers'],
    ['Hidden size', `${model.hidden} (MLP ${model.intermediate})`, 'model-hidden'],
    ['Attention heads', `${model.heads} query, ${model.kvHeads} key/value`, 'model-heads'],
    ['Vocabulary', model.vocab.toLocaleString('en-US'), 'model-vocab'],
    ['Context', `${model.maxPositions.toLocaleString('en-US')} tokens`, 'model-context'],
  ];
  if (gguf) {
    facts.push(['Quantization', quantizationText(model), 'model-quantization']);
    facts.push(['File size', formatBytes(model.fileBytes ?? 0), 'model-file-bytes']);
  }
  facts.push(
    [
      'Weights on GPU',
      `${model.weightPrecision}, ${formatBytes(model.weightBytes)}${gguf ? ggufWeightsNote(model.weightPrecision) : ''}`,
      'model-weights',
    ],
    ['Tokenizer', tokenizerText(model), 'model-tokenizer'],
    ['Chat template', model.chatTemplate ? 'From the model' : 'None (a generic one is used for chat data)', 'model-chat'],
  );
  const dl = el('dl', { class: 'facts' });
  for (const [term, value, id] of facts) dl.append(el('dt', {}, term), el('dd', { 'data-testid': id }, value));
  if (!gguf || model.tokenizerProblems.length === 0) return [dl];
  const warning = el(
    'div',
    { class: 'notice', 'data-kind': 'warn', 'data-testid': 'model-tokenizer-problems' },
    el('p', {}, 'webtune may split some text into tokens differently than llama.cpp does for this file:'),
    el('ul', {}, ...model.tokenizerProblems.map((p) => el('li', {}, p))),
    el(
      'p',
      {},
      "For exact tokenization, choose the GGUF again together with the model's tokenizer.json and tokenizer_config.json " +
        '(from its Hugging Face repository).',
    ),
  );
  return [dl, warning];
}

/** A GGUF under 'auto' keeps its block formats on the GPU ('mixed' or one of them); a float precision holds the blocks' values. */
function ggufWeightsNote(precision: ModelInfo['weightPrecision']): string {
  return precision === 'f32' || precision === 'bf16' || precision === 'f16'
    ? " (the values of the file's blocks)"
    : ' (quantized blocks kept as stored)';
}
