#!/usr/bin/env python3
"""PyTorch + PEFT reference for `npm run -s bench`: the same LoRA training step on the same shapes.

Builds a random-init LlamaForCausalLM from the same config.json (bench/configs/ or a path), wraps it
with PEFT LoRA (same r, alpha, targets, dropout 0), trains in fp32 with AdamW and gradient clipping
at 1.0 on random token ids, and prints one JSON object (the last stdout line) with the field names
of the webtune benchmark, also written to bench/results/<device>-<config>-torch-peft-<date>.json.

    python3 bench/torch_peft.py --config smollm2-135m --seq 512 --batch 4 --r 16 --targets q_proj,k_proj,v_proj

Needs torch, transformers and peft (present on the lent GPU machines; see README, Benchmarks).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILT_IN = {
    name: f"{name}.json"
    for name in [
        "stories260K",
        "smollm2-135m",
        "smollm2-360m",
        "smollm2-1.7b",
        "qwen2.5-0.5b",
        "qwen2.5-1.5b",
        "llama3.2-1b",
        "tinyllama-1.1b",
    ]
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="stories260K", help="stories260K, smollm2-135m or a config.json path")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--alpha", type=float, help="default 2r, as in the webtune benchmark")
    p.add_argument("--targets", default="q_proj,k_proj,v_proj")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="where to write the JSON instead of bench/results/")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu, for a smoke test without a GPU")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention implementation")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (off: true fp32, like the engine)")
    args = p.parse_args(argv)
    if args.seq < 2 or args.batch < 1 or args.r < 1 or args.warmup < 0 or args.steps < 1:
        p.error("need --seq >= 2, --batch >= 1, --r >= 1, --warmup >= 0, --steps >= 1")
    if args.alpha is None:
        args.alpha = 2 * args.r
    return args


def load_config(name_or_path):
    if name_or_path in BUILT_IN:
        path, name = os.path.join(HERE, "configs", BUILT_IN[name_or_path]), name_or_path
    elif name_or_path.endswith(".json"):
        path = name_or_path
        base = os.path.basename(path)
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) if base == "config.json" else base[: -len(".json")]
    else:
        sys.exit(f"--config {name_or_path!r} is neither {', '.join(BUILT_IN)} nor a config.json path")
    with open(path) as f:
        return name, json.load(f)


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        return f"{commit}-dirty" if dirty else commit
    except (OSError, subprocess.CalledProcessError):
        return None


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "unknown-device"


def main(argv):
    args = parse_args(argv)
    import peft
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    name, raw = load_config(args.config)
    if raw.get("model_type", "llama") != "llama":
        sys.exit(f"{args.config}: model_type {raw.get('model_type')!r}; this reference builds Llama models only")
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or pass --device cpu for a smoke test")
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)

    # fp32 everywhere, like the engine: the checkpoint's storage dtype means nothing for random
    # weights, and from_config would build the model in it. from_dict is the path from_pretrained
    # takes for a config.json, so older spellings (rope_theta beside rope_parameters) are handled.
    fields = {k: v for k, v in raw.items() if k not in ("torch_dtype", "dtype")}
    config = LlamaConfig.from_dict(fields)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=args.attn).float()
    model.config.use_cache = False
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    lora = LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=targets, bias="none", task_type="CAUSAL_LM")

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model = get_peft_model(model, lora).to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in model.parameters()), "every parameter must be fp32"
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    generator = torch.Generator().manual_seed(args.seed + 1)
    total = args.warmup + args.steps
    batches = [torch.randint(0, config.vocab_size, (args.batch, args.seq), generator=generator).to(device) for _ in range(total)]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    step_ms, losses = [], []
    for i, ids in enumerate(batches):
        sync()
        start = time.perf_counter()
        # Labels equal the inputs: transformers shifts them, as the engine does, so T - 1 targets per row.
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if i >= args.warmup:
            step_ms.append((time.perf_counter() - start) * 1000)
        losses.append(loss.detach())

    tokens_per_step = args.batch * args.seq
    frozen_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    trainable_count = sum(p.numel() for p in trainable)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    device_name = torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine())
    date = datetime.date.today().isoformat()
    result = {
        "benchmark": "torch-peft-lora-train-step",
        "mode": "steps",
        "mode_note": f"{args.warmup} warm-up and {args.steps} timed training steps, each timed between torch.cuda.synchronize() calls",
        "config": name,
        "model": {
            "architecture": "llama",
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_layers": config.num_hidden_layers,
            "num_heads": config.num_attention_heads,
            "num_kv_heads": config.num_key_value_heads,
            "head_dim": getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
            "vocab_size": config.vocab_size,
            "tie_word_embeddings": bool(config.tie_word_embeddings),
            "parameters": sum(p.numel() for p in model.parameters() if not p.requires_grad),
        },
        "seq": args.seq,
        "batch": args.batch,
        "tokens_per_step": tokens_per_step,
        "lora": {"r": args.r, "alpha": args.alpha, "dropout": 0.0, "targets": targets, "trainable_parameters": trainable_count},
        "optimizer": "AdamW (clip 1.0)",
        "precision": "tf32" if args.tf32 else "f32",
        "attn_implementation": args.attn,
        "warmup": args.warmup,
        "steps": args.steps,
        "tokens_per_s": tokens_per_step * len(step_ms) / (sum(step_ms) / 1000),
        "ms_per_step": {
            "median": statistics.median(step_ms),
            "mean": statistics.fmean(step_ms),
            "min": min(step_ms),
            "max": max(step_ms),
        },
        "step_ms": step_ms,
        "losses": [float(l) for l in losses],
        "peak_memory_bytes": peak,
        "peak_memory_gib": None if peak is None else peak / 2**30,
        "peak_memory_source": "torch.cuda.max_memory_allocated() since just before the model moved to the GPU",
        "memory": {
            "weights_bytes": frozen_bytes,
            # Parameters, gradients and the two AdamW moments of the adapter.
            "adapter_and_optimizer_bytes": 4 * trainable_count * 4,
            "reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
        },
        "device": {"name": device_name, "cuda": cuda},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "date": date,
        "git_commit": git_commit(),
        "command": " ".join(shlex.quote(a) for a in ["python3", "bench/torch_peft.py", *argv]),
    }
    out = args.out or os.path.join(HERE, "results", f"{slug(device_name)}-{name}-torch-peft-{date}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"torch_peft: written to {out}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
