#!/usr/bin/env python3
"""PyTorch + transformers side of the engine speed benchmark.

Random-weight CLIP-B/32 and ViLT-B/32 (VQA head) at their real sizes (the
configs of openai/clip-vit-base-patch32 and dandelin/vilt-b32-finetuned-vqa;
speed does not depend on weight values), CPU, float32, inference mode, the
same shapes and thread count as benches/engine_speed.rs and `multishap speed`.
Prints one JSON object per (model, dtype, batch) with evaluations per second.

    /work/venvs/engine/bin/python scripts/bench_torch.py --threads 2 --batches 1 8 32 64
    python3 scripts/bench_torch.py --device cuda --dtypes f32 bf16 f16 --batches 64 256 1024

On CUDA every timed call ends with torch.cuda.synchronize() (as `multishap speed` synchronises
the device), the model is in eager mode (no torch.compile), under torch.inference_mode(), with
the weights in the dtype (inputs: pixel values cast to it, ids as int64). A batch that runs out
of memory is reported and the larger ones skipped.

Shapes: CLIP image 3x224x224, CLIP text 12 tokens (sot + 10 + eot); ViLT image
3x384x384 (12x12 patches) + 12 question tokens, pixel_mask all ones.
"""
import argparse
import json
import time

import torch
import transformers
from transformers import CLIPConfig, CLIPModel, ViltConfig, ViltForQuestionAnswering

CLIP_TEXT_LEN = 12
VILT_TEXT_LEN = 12


def clip_config():
    return CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=32, hidden_act="quick_gelu"),
        projection_dim=512,
    )


def vilt_config():
    cfg = ViltConfig(image_size=384, patch_size=32, max_position_embeddings=40, num_images=-1,
                     max_image_length=-1)
    cfg.id2label = {i: str(i) for i in range(3129)}
    cfg.label2id = {str(i): i for i in range(3129)}
    return cfg


DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def timeit(fn, sync, min_iters=3, min_seconds=3.0):
    fn()  # warm-up
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--models", nargs="+", default=["clip_image", "clip_text", "vilt_vqa"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", nargs="+", default=["f32"], choices=sorted(DTYPES))
    ap.add_argument("--min-seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    meta = dict(framework="torch", torch=torch.__version__, transformers=transformers.__version__,
                threads=torch.get_num_threads(), device=args.device)
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        clip = vilt = None
        if any(m.startswith("clip") for m in args.models):
            clip = CLIPModel(clip_config()).eval().to(dev, dtype)
        if "vilt_vqa" in args.models:
            vilt = ViltForQuestionAnswering(vilt_config()).eval().to(dev, dtype)
        with torch.inference_mode():
            for model in args.models:
                for b in args.batches:
                    if model == "clip_image":
                        px = torch.randn(b, 3, 224, 224, generator=g).to(dev, dtype)
                        fn = lambda: clip.get_image_features(pixel_values=px)
                    elif model == "clip_text":
                        ids = torch.randint(0, 49000, (b, CLIP_TEXT_LEN), generator=g)
                        ids[:, 0] = 49406
                        ids[:, -1] = 49407
                        ids = ids.to(dev)
                        fn = lambda: clip.get_text_features(input_ids=ids)
                    else:
                        ids = torch.randint(1000, 30000, (b, VILT_TEXT_LEN), generator=g)
                        ids[:, 0] = 101
                        ids[:, -1] = 102
                        ids = ids.to(dev)
                        att = torch.ones_like(ids)
                        px = torch.randn(b, 3, 384, 384, generator=g).to(dev, dtype)
                        pm = torch.ones(b, 384, 384, dtype=torch.long, device=dev)
                        fn = lambda: vilt(input_ids=ids, attention_mask=att, pixel_values=px,
                                          pixel_mask=pm).logits
                    rec = dict(meta, model=model, dtype=dname, batch=b)
                    try:
                        s = timeit(fn, sync, min_seconds=args.min_seconds)
                    except torch.OutOfMemoryError:
                        print(json.dumps(dict(rec, out_of_memory=True)), flush=True)
                        torch.cuda.empty_cache()
                        break
                    print(json.dumps(dict(rec, seconds_per_batch=s, evals_per_s=b / s)), flush=True)
        del clip, vilt
        if dev.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
