#!/usr/bin/env python3
"""PyTorch + transformers side of the engine speed benchmark.

Random-weight CLIP-B/32 and ViLT-B/32 (VQA head) at their real sizes (the
configs of openai/clip-vit-base-patch32 and dandelin/vilt-b32-finetuned-vqa;
speed does not depend on weight values), CPU, float32, inference mode, the
same shapes and thread count as benches/engine_speed.rs. Prints one JSON
object per (model, batch) with evaluations per second.

    /work/venvs/engine/bin/python scripts/bench_torch.py --threads 2 --batches 1 8 32 64

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


def timeit(fn, min_iters=3, min_seconds=3.0):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    clip = vilt = None
    if any(m.startswith("clip") for m in args.models):
        clip = CLIPModel(clip_config()).eval()
    if "vilt_vqa" in args.models:
        vilt = ViltForQuestionAnswering(vilt_config()).eval()
    meta = dict(framework="torch", torch=torch.__version__, transformers=transformers.__version__,
                threads=torch.get_num_threads())
    with torch.inference_mode():
        for model in args.models:
            for b in args.batches:
                if model == "clip_image":
                    px = torch.randn(b, 3, 224, 224, generator=g)
                    fn = lambda: clip.get_image_features(pixel_values=px)
                elif model == "clip_text":
                    ids = torch.randint(0, 49000, (b, CLIP_TEXT_LEN), generator=g)
                    ids[:, 0] = 49406
                    ids[:, -1] = 49407
                    fn = lambda: clip.get_text_features(input_ids=ids)
                else:
                    ids = torch.randint(1000, 30000, (b, VILT_TEXT_LEN), generator=g)
                    ids[:, 0] = 101
                    ids[:, -1] = 102
                    att = torch.ones_like(ids)
                    px = torch.randn(b, 3, 384, 384, generator=g)
                    pm = torch.ones(b, 384, 384, dtype=torch.long)
                    fn = lambda: vilt(input_ids=ids, attention_mask=att, pixel_values=px, pixel_mask=pm).logits
                s = timeit(fn)
                print(json.dumps(dict(meta, model=model, batch=b, seconds_per_batch=s, evals_per_s=b / s)),
                      flush=True)


if __name__ == "__main__":
    main()
