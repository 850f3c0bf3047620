/** A command line the CLI cannot run; the message says what to change. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `webtune <command> [options]

<model> (--model) is a Hugging Face folder, a .gguf file (the first shard of a split one), an Ollama
blob, or an Ollama models folder with --ollama-model <name> (--ollama-model alone: $OLLAMA_MODELS,
~/.ollama/models, /usr/share/ollama/.ollama/models). --tokenizer <dir|tokenizer.json> replaces the
tokenizer built from a GGUF's metadata with the model's own.

Commands:
  golden <case-dir> [--models <dir>] [--recompute off|on] [--schedules auto|gpu|cpu] [--matmul auto|vec4|tiled|direct|subgroup]
         [--weights auto|f32|bf16|f16]
      Runs a golden case (case.json + safetensors) through the engine and prints, as the last
      line, JSON with loss, gradient and AdamW errors against PyTorch. Exit status 0 only when ok.
      The model folder is <models>/<case.model>; --models defaults to ../shared/models.
      --recompute on computes the gradients with activation recomputation.
      --schedules gpu (or cpu) runs every kernel family that has both on its GPU (or CPU) schedule
      on any device; auto (the default) picks by device. --matmul forces one matmul schedule over that
      (subgroup falls back to vec4 where it does not apply, as src/kernels/matmul.ts says).
  generate --model <model> --prompt <text> [--adapter <dir>] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
           [--weights auto|f32|bf16|f16]
      Prints the model's continuation of the prompt (temperature 0: greedy), with a PEFT adapter when given.
  train --model <model> --data <train.jsonl> [--eval <eval.jsonl>] --out <adapter-dir>
        [--r 8] [--alpha 16] [--dropout 0] [--targets q_proj,k_proj,v_proj] [--lr 2e-4] [--epochs 3]
        [--batch 4] [--grad-accum 1] [--warmup 0] [--schedule linear|cosine|constant] [--weight-decay 0]
        [--max-grad-norm 1] [--max-length 512] [--eval-fraction 0.1] [--seed 42] [--init-adapter <dir>]
        [--recompute auto|on|off] [--memory-budget <GiB>] [--weights auto|f32|bf16|f16]
      Trains a LoRA adapter and writes it as a PEFT folder. Last stdout line: JSON with
      eval_loss_before, eval_loss_after, train_loss_first, train_loss_last, steps, tokens_per_s.
      --init-adapter continues an existing PEFT adapter instead of a fresh initialisation: --r and
      --targets must match it (they default to its own); --alpha may differ, B is then rescaled so
      the starting model is unchanged; the optimizer state and schedule start afresh.
      --recompute on keeps only each layer's input and recomputes the layer in backward (same
      gradients, far less memory, about a third more compute); auto (the default) turns it on when
      the run would exceed the memory budget: --memory-budget, else 4 GiB (Dawn reports no memory size).
  train --phase1-data <a.jsonl> [--phase1-eval <a_eval.jsonl>] --data <b.jsonl> [--eval <b_eval.jsonl>]
        --out <adapter-dir> [--phase1-out <dir>] [--phase1-epochs N] [--phase1-lr LR] [train options]
      Progressive training: phase 1 on a.jsonl, then phase 2 on b.jsonl from the phase-1 adapter.
      Last stdout line: JSON with each phase's losses and a forgetting report (eval loss on the
      phase-1 eval data after phase 1 and after phase 2, and their difference).
  eval --model <model> [--adapter <dir>] --data <eval.jsonl> [--max-new-tokens 64] [--temperature 0]
       [--top-p 1] [--seed 0] [--max-length 512] [--batch 4] [--format json|csv] [--out <file>] [--weights auto|f32|bf16|f16]
      Evaluates the base model (before) and base + adapter (after): mean token loss and perplexity
      (training's masks: assistant turns only for chat), and for chat rows with a Context: block a
      generated answer scored for context usage, source attribution and token F1. Last stdout line:
      the report as JSON; --out writes it as --format (json or csv) to a file.
  export --model <model> --adapter <dir> --format peft|gguf|merged|merged-gguf --out <path>
         [--dtype same|f32 (merged) | f16|bf16|q8_0|f32 (merged-gguf)] [--base <Ollama model>]
      Writes the adapter as a PEFT folder or a GGUF LoRA (with the base's tensor names), or the base
      model with the adapter merged in as a Hugging Face folder or one GGUF file; each with an Ollama
      Modelfile (FROM --base, by default the Ollama model, GGUF path or folder name of --model).
  logits --model <model> [--adapter <dir>] --ids 1,2,3 [--weights auto|f32|bf16|f16]
      Prints the last position's logits as JSON.
  analyze <data.jsonl>
      Prints the dataset's task analysis and training recommendation as JSON.

--weights (every command that loads a model onto the GPU) says how the frozen weight matrices are
stored there: auto (default) keeps each tensor's checkpoint dtype, so a BF16 or F16 checkpoint
stays 16-bit, half the memory of f32 and exactly the file's values; f32 widens everything (exact);
bf16 or f16 stores an F32 checkpoint in 16 bits, rounded to nearest even (f16 refuses a value beyond
+-65504, naming the tensor). Norm weights and biases stay f32; LoRA weights, gradients, optimizer
state and activations are always f32. stderr names the precision the GPU holds.
`;
