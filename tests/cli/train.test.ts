/**
 * The acceptance runs of `webtune train`: stories260K learns about Zog, from its Hugging Face
 * folder and from a GGUF of it quantized as llama-quantize's Q4_K_M makes it (tests/gguf/quant-mix.ts:
 * Q5_0, Q8_0 and F16, since no stories260K row fits a K-quant). Each adapter is then exported as a
 * GGUF LoRA and applied by real llama.cpp (node-llama-cpp) to the GGUF base it belongs to, which
 * must continue the prompt as webtune does and talk about Zog too.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/eval/generate';
import { readPeftAdapter } from '../../src/export/peft';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { openGgufBase } from '../../src/gguf/base';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { LoraWeights } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { type OpenedModel, openModel } from '../../src/model/weights';
import { llamaCppDistributions, llamaCppGreedy, maxAbsDiff, webtuneDistributions, writeGguf } from '../gguf/llama-cpp';
import { llamaCppMix } from '../../src/gguf/quant-mix';
import { f32Twin } from '../gguf/quantized-models';
import { webtune } from '../helpers/cli';
import { testGpu } from '../helpers/gpu';
import { SHARED, STORIES_260K } from '../helpers/paths';

const PROMPT = 'Once upon a time, there was a little';
const STEPS = 20;
/** PyTorch with these settings: eval loss 1.69 -> 0.09 in 48 steps. */
const RECIPE = [
  ['--data', resolve(SHARED, 'data/zog_stories_train.jsonl')],
  ['--eval', resolve(SHARED, 'data/zog_stories_eval.jsonl')],
  ['--r', '8'],
  ['--alpha', '16'],
  ['--targets', 'q_proj,k_proj,v_proj'],
  ['--lr', '5e-3'],
  ['--epochs', '8'],
  ['--batch', '4'],
].flat();

const dir = mkdtempSync(join(tmpdir(), 'webtune-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const evalLossAfter: Record<string, number> = {};

/**
 * The demo's shorter run (src/ui/views/demo.ts): rows cut at 32 tokens, 4 epochs, 24 steps, about a
 * sixth of the README's run, which is enough for Zog to appear.
 */
const SHORT = ['--max-length', '32', '--epochs', '4'];

/** Trains the Zog adapter through the CLI on `model` and checks what every run must reach. */
function trainZog(model: string, out: string, extra: string[] = [], steps = 48) {
  const run = webtune(['train', '--model', model, ...RECIPE, ...extra, '--out', out], 1_800_000);
  expect(run.status, run.stderr).toBe(0);
  const result = JSON.parse(run.last);
  console.log(run.last);
  expect(result.steps).toBe(steps);
  expect(result.eval_loss_before).toBeGreaterThan(1.5);
  expect(result.eval_loss_after).toBeLessThan(0.3);
  expect(result.train_loss_last).toBeLessThan(result.train_loss_first);
  expect(result.tokens_per_s).toBeGreaterThan(0);
  expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const prompt = ['--prompt', PROMPT, '--max-new-tokens', '20', '--temperature', '0'];
  const adapted = webtune(['generate', '--model', model, '--adapter', out, ...prompt]);
  const base = webtune(['generate', '--model', model, ...prompt]);
  expect(adapted.status).toBe(0);
  expect(adapted.last).toContain('Zog');
  expect(base.last).not.toContain('Zog');
  return result;
}

/** The adapter exported by the CLI as a GGUF LoRA for `model`: the .gguf's path; the Modelfile names `from` and it. */
function exportGgufLora(model: string, adapter: string, out: string, from: string): string {
  const run = webtune(['export', '--model', model, '--adapter', adapter, '--format', 'gguf', '--out', out]);
  expect(run.status, run.stderr).toBe(0);
  const name = out.split('/').pop()!;
  expect(readdirSync(out).sort()).toEqual(['Modelfile', `${name}.gguf`]);
  expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toBe(`FROM ${from}\nADAPTER ./${name}.gguf\n`);
  return join(out, `${name}.gguf`);
}

/** webtune's greedy continuation and next-token distributions with the adapter, on `opened`. */
async function webtuneWithAdapter(opened: OpenedModel, adapterDir: string) {
  const gpu = await testGpu();
  const model = await LlamaModel.load(gpu, opened.weights);
  const tensors = await readPeftAdapter(nodeFileSource(adapterDir), opened.config);
  const adapter = LoraWeights.fromTensors(gpu, opened.config, tensors.config, tensors.tensors, adapterDir);
  const tokenizer = TextTokenizer.fromJson(opened.tokenizerJson, opened.tokenizerConfig);
  const greedy = await generate(model, tokenizer, adapter, PROMPT, { maxNewTokens: STEPS, temperature: 0 });
  const ids = [...greedy.promptIds, ...greedy.ids];
  const distributions = await webtuneDistributions(model, ids, adapter);
  adapter.destroy();
  model.destroy();
  return { greedy, ids, distributions };
}

describe('webtune train (the acceptance runs: stories260K learns about Zog)', () => {
  it('Hugging Face folder: eval loss < 0.3, Zog in generate; as a GGUF LoRA on the F32 GGUF, llama.cpp continues as webtune', {
    timeout: 1_800_000,
  }, async () => {
    const out = join(dir, 'zog');
    evalLossAfter.f32 = trainZog(STORIES_260K, out).eval_loss_after;

    const stories = await openModel(nodeFileSource(STORIES_260K));
    const base = await writeGguf(join(dir, 'stories260K-F32.gguf'), ggufModelParts({ ...stories, tokenizer: stories, type: 'F32' }));
    const lora = exportGgufLora(STORIES_260K, out, join(dir, 'zog-gguf'), 'stories260K');
    const ours = await webtuneWithAdapter(stories, out);
    const theirs = await llamaCppGreedy(base, ours.greedy.promptIds, STEPS, { lora });
    expect(ours.greedy.text).toContain('Zog');
    expect(theirs.ids).toEqual(ours.greedy.ids);
    expect(theirs.text).toBe(ours.greedy.text);
    const dp = maxAbsDiff(await llamaCppDistributions(base, ours.ids, stories.config.vocabSize, { lora }), ours.distributions);
    console.info(
      `Zog adapter, F32 GGUF + GGUF LoRA: max |Δp| llama.cpp vs webtune over ${ours.ids.length} positions = ${dp.toExponential(2)}`,
    );
    expect(dp).toBeLessThan(1e-4);
  });

  it('Q4_K_M GGUF base: eval loss < 0.3, Zog in generate; the GGUF LoRA on that same file makes llama.cpp say Zog too', {
    timeout: 1_800_000,
  }, async () => {
    const stories = await openModel(nodeFileSource(STORIES_260K));
    const file = await writeGguf(
      join(dir, 'stories260K-Q4_K_M.gguf'),
      ggufModelParts({ ...stories, tokenizer: stories, type: 'Q4_K', typeFor: llamaCppMix('Q4_K_M', stories.config) }),
    );
    const out = join(dir, 'zog-q4');
    // The short run keeps the suite's cost down; the README gives both bases' eval loss after the full run.
    evalLossAfter.q4km = trainZog(file, out, SHORT, 24).eval_loss_after;
    console.info(
      `eval loss after training: F32 folder ${evalLossAfter.f32} (48 steps), Q4_K_M GGUF ${evalLossAfter.q4km} (24 short steps)`,
    );

    // FROM names the GGUF the adapter was trained on (with --ollama-model: the Ollama model).
    const lora = exportGgufLora(file, out, join(dir, 'zog-q4-gguf'), file);
    const ours = await webtuneWithAdapter(await openGgufBase(await nodeByteSource(file)), out);
    const theirs = await llamaCppGreedy(file, ours.greedy.promptIds, STEPS, { lora });
    console.info(`Q4_K_M + Zog: webtune "${ours.greedy.text}", llama.cpp "${theirs.text}"`);
    expect(theirs.text).toContain('Zog');
    // Exactly the file's weights: against llama.cpp on the F32 file of the same dequantized blocks.
    const twin = await writeGguf(join(dir, 'stories260K-Q4_K_M-twin.gguf'), await f32Twin(file));
    const vocab = stories.config.vocabSize;
    const dpTwin = maxAbsDiff(await llamaCppDistributions(twin, ours.ids, vocab, { lora }), ours.distributions);
    const dpFile = maxAbsDiff(await llamaCppDistributions(file, ours.ids, vocab, { lora }), ours.distributions);
    console.info(
      `Q4_K_M + Zog: max |Δp| webtune vs llama.cpp on the F32 twin ${dpTwin.toExponential(2)}, ` +
        `on the quantized file itself ${dpFile.toExponential(2)} (llama.cpp rounds activations to 8 bits there)`,
    );
    expect(dpTwin).toBeLessThan(1e-4);
    expect(dpFile).toBeLessThan(5e-2);
  });
});
