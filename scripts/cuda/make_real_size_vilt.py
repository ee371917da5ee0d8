#!/usr/bin/env python3
"""Write a ViLT-B/32 VQA checkpoint at the real size with random weights, in Hugging Face format,
for timing `multishap explain` / `run` end to end on a machine that cannot reach the Hub.

The configuration is dandelin/vilt-b32-finetuned-vqa's (scripts/bench_torch.py's vilt_config:
12 layers, width 768, 3129 answers labelled "0".."3128"); weights are transformers' own random
initialisation (seeded), saved as model.safetensors by save_pretrained. The tokenizer is the demo
model's (its ids are all below 30522), the image processor ViLT's (shortest edge 384, so a square
image gives 12 x 12 = 144 patches). Speed does not depend on weight values; answers are
meaningless.

    python3 scripts/cuda/make_real_size_vilt.py /tmp/vilt-b32-random
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import ViltForQuestionAnswering

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_torch import vilt_config  # noqa: E402


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "vilt-b32-random")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = ViltForQuestionAnswering(vilt_config()).eval()
    model.save_pretrained(out, safe_serialization=True)
    demo = ROOT / "models" / "demo-vilt-vqa"
    for name in ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(demo / name, out / name)
    pre = json.loads((demo / "preprocessor_config.json").read_text())
    pre["size"] = {"shortest_edge": 384}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out} ({n / 1e6:.1f} M parameters)")


if __name__ == "__main__":
    main()
