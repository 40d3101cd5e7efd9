#!/usr/bin/env python3
"""Tests of convert_pth.py and load_checkpoint.py on small synthetic DINO / SelfPatch models.

  python test_interop.py                    # Python only (a few seconds)
  python test_interop.py --cli PATH/ssl-run # also check that `ssl-run eval` accepts a converted file
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_pth  # noqa: E402
import load_checkpoint  # noqa: E402

D, DEPTH, HEADS, PATCH, IMAGE = 128, 2, 2, 4, 28


def timm_vit(class_token=True, final_norm=True, seed=0):
    from functools import partial

    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    model = VisionTransformer(
        img_size=IMAGE, patch_size=PATCH, embed_dim=D, depth=DEPTH, num_heads=HEADS, num_classes=0,
        class_token=class_token, global_pool="token" if class_token else "avg", fc_norm=False, final_norm=final_norm,
        norm_layer=partial(nn.LayerNorm, eps=1e-6))
    with torch.no_grad():  # make every tensor non-trivial (norms and biases start at 1 / 0)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def dino_head(prefix, out_dim=64, seed=1):
    generator = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=generator)

    return {
        f"{prefix}mlp.0.weight": r(96, D), f"{prefix}mlp.0.bias": r(96), f"{prefix}mlp.2.weight": r(96, 96),
        f"{prefix}mlp.2.bias": r(96), f"{prefix}mlp.4.weight": r(32, 96), f"{prefix}mlp.4.bias": r(32),
        f"{prefix}last_layer.weight_g": r(out_dim, 1), f"{prefix}last_layer.weight_v": r(out_dim, 32)}


def selfpatch_heads(prefix):
    generator = torch.Generator().manual_seed(2)
    heads = {f"{prefix}ca_head.cls_token": torch.randn(1, 1, D, generator=generator),
             f"{prefix}ca_head.norm.weight": torch.randn(D, generator=generator),
             f"{prefix}ca_head.norm.bias": torch.randn(D, generator=generator)}
    for block in range(2):
        for part in ("attn.q", "attn.k", "attn.v", "attn.proj"):
            heads[f"{prefix}ca_head.cls_blocks.{block}.{part}.weight"] = torch.randn(D, D, generator=generator)
            heads[f"{prefix}ca_head.cls_blocks.{block}.{part}.bias"] = torch.randn(D, generator=generator)
    heads.update(dino_head(f"{prefix}c_head.", 64))
    heads.update(dino_head(f"{prefix}p_head.", 48))
    return heads


def read_string_like_swiftssl(obj, name):
    """Reads a string attribute as HDF5File.stringAttribute does: fixed-length strings into a
    NULLTERM buffer of the stored width."""
    attribute = h5py.h5a.open(obj.id, name.encode())
    stored = attribute.get_type()
    assert stored.get_class() == h5py.h5t.STRING, f"attribute {name} is not a string"
    if stored.is_variable_str():
        return obj.attrs[name] if isinstance(obj.attrs[name], str) else obj.attrs[name].decode()
    memory = h5py.h5t.C_S1.copy()
    memory.set_size(stored.get_size())
    memory.set_strpad(h5py.h5t.STR_NULLTERM)
    buffer = np.zeros((), dtype=f"S{stored.get_size()}")
    attribute.read(buffer, mtype=memory)
    return buffer.item().split(b"\0")[0].decode()


def check_file(path, backbone, heads=None, class_token=True, final_norm=True):
    """Names, shapes, values, dtypes and attributes of a converted file."""
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"].dtype == np.float64 and f.attrs["format_version"] == 1.0
        assert read_string_like_swiftssl(f, "kind") == "backbone"
        architecture = json.loads(read_string_like_swiftssl(f, "architecture"))
        expected = {"embedDimension": D, "depth": DEPTH, "heads": HEADS, "mlpRatio": 4, "patchSize": PATCH,
                    "imageSize": IMAGE, "classToken": class_token, "finalNorm": final_norm,
                    "positionEmbedding": "learned", "freezePatchProjection": False, "dropPathRate": 0,
                    "layerNormEpsilon": 1e-6}
        assert architecture == expected, architecture
        datasets = {k for k, v in f.items() if isinstance(v, h5py.Dataset)}
        assert datasets == set(backbone), sorted(datasets ^ set(backbone))
        for key, value in backbone.items():
            stored = f[key]
            assert stored.dtype == np.float32 and stored.fletcher32, key
            assert stored.shape == tuple(value.shape), (key, stored.shape, value.shape)
            assert np.array_equal(stored[()], value.numpy()), key
        if heads is None:
            assert "heads" not in f
        else:
            assert set(f["heads"].keys()) == set(heads), sorted(set(f["heads"].keys()) ^ set(heads))
            for key, value in heads.items():
                assert np.array_equal(f["heads"][key][()], value.numpy()), key
    return architecture


@torch.no_grad()
def reference_features(model, images):
    """Image features computed by hand (no timm pooling logic): class token after the final
    norm, or the mean of the (normed, if any) patch tokens."""
    x = model.patch_embed(images)
    if model.cls_token is not None:
        x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
    x = x + model.pos_embed
    for block in model.blocks:
        x = block(x)
    x = model.norm(x)
    return x[:, 0] if model.cls_token is not None else x.mean(dim=1)


def check_roundtrip(path, original, class_token=True):
    """load_checkpoint rebuilds the model strictly and reproduces the original's features."""
    model, architecture, _ = load_checkpoint.load_model(path, verbose=False)
    assert (model.cls_token is not None) == class_token
    images = torch.randn(5, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(3))
    ours, _ = load_checkpoint.extract_features(model, images)
    reference = reference_features(original, images)
    difference = (ours - reference).abs().max().item()
    assert difference < 1e-5, difference
    return difference


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", help="ssl-run binary: also run `ssl-run eval` on a converted file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp(prefix="interop-test-")

    # 1. DINO backbone state dict with DDP/MultiCropWrapper prefixes and a DINO head.
    model = timm_vit()
    backbone = model.state_dict()
    head = dino_head("head.")
    pth = os.path.join(folder, "dino_backbone.pth")
    torch.save({**{f"module.backbone.{k}": v for k, v in backbone.items()},
                **{f"module.{k}": v for k, v in head.items()}}, pth)
    out = os.path.join(folder, "dino.h5")
    convert_pth.convert(pth, out, heads=HEADS, heads_too=True, verbose=False)
    check_file(out, backbone, heads=head)
    print(f"ok  DINO state dict (module.backbone./module.head.) -> {len(backbone)} root datasets + "
          f"{len(head)} heads/, |Δfeatures| = {check_roundtrip(out, model):.1e}")

    # 2. DINO full training checkpoint: teacher / student, args Namespace, loss centre.
    teacher, student = timm_vit(seed=4), timm_vit(seed=5)
    full = {
        "teacher": {**{f"backbone.{k}": v for k, v in teacher.state_dict().items()}, **dino_head("head.")},
        "student": {**{f"module.backbone.{k}": v for k, v in student.state_dict().items()},
                    **{f"module.{k}": v for k, v in dino_head("head.", seed=6).items()}},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 3, "args": argparse.Namespace(arch="vit_small", patch_size=16, out_dim=65536),
        "dino_loss": {"center": torch.zeros(1, 64)}, "fp16_scaler": None}
    pth = os.path.join(folder, "dino_full.pth")
    torch.save(full, pth)
    for network, original in (("teacher", teacher), ("student", student)):
        out = os.path.join(folder, f"dino_{network}.h5")
        convert_pth.convert(pth, out, network=network, heads=HEADS, verbose=False)
        check_file(out, original.state_dict())
        print(f"ok  DINO training checkpoint ['{network}'] (weights_only load with args Namespace), "
              f"|Δfeatures| = {check_roundtrip(out, original):.1e}")

    # 3. SelfPatch: backbone without cls_token and final norm, ca_head / c_head / p_head.
    selfpatch = timm_vit(class_token=False, final_norm=False, seed=7)
    state = selfpatch.state_dict()
    assert "cls_token" not in state and "norm.weight" not in state and state["pos_embed"].shape[1] == 49
    heads = selfpatch_heads("")
    pth = os.path.join(folder, "selfpatch.pth")
    torch.save({"teacher": {**{f"backbone.{k}": v for k, v in state.items()}, **heads},
                "student": {f"module.{k}": v for k, v in {**{f"backbone.{k}": v for k, v in state.items()},
                                                         **heads}.items()},
                "dino_loss": {"center": torch.zeros(1, 1, 64), "patch_center": torch.zeros(1, 48)}}, pth)
    out = os.path.join(folder, "selfpatch.h5")
    convert_pth.convert(pth, out, heads=HEADS, heads_too=True, verbose=False)
    check_file(out, state, heads=heads, class_token=False, final_norm=False)
    print(f"ok  SelfPatch checkpoint (no cls_token, no norm; ca_head/c_head/p_head under heads/), "
          f"|Δfeatures| = {check_roundtrip(out, selfpatch, class_token=False):.1e}")

    # 4. Unknown keys are refused unless dropped or stripped; bad shapes are refused.
    pth = os.path.join(folder, "unknown.pth")
    torch.save({**{f"encoder.{k}": v for k, v in backbone.items()}, "fc.weight": torch.zeros(3, D)}, pth)
    for options, outcome in (({}, "error"), ({"strip": ["encoder."]}, "error"),
                             ({"strip": ["encoder."], "drop_unknown": True}, "ok")):
        try:
            convert_pth.convert(pth, os.path.join(folder, "unknown.h5"), heads=HEADS, verbose=False, **options)
            result = "ok"
        except convert_pth.ConversionError:
            result = "error"
        assert result == outcome, (options, result)
    broken = dict(backbone)
    broken["blocks.1.mlp.fc2.weight"] = torch.zeros(D, 3 * D)
    torch.save(broken, pth)
    try:
        convert_pth.convert(pth, os.path.join(folder, "broken.h5"), heads=HEADS, verbose=False)
        raise AssertionError("a bad shape was accepted")
    except convert_pth.ConversionError as error:
        assert "blocks.1.mlp.fc2.weight" in str(error)
    print("ok  unknown keys refused (accepted with --strip + --drop-unknown); inconsistent shapes refused")

    # 5. h5py's default fixed-length strings (np.bytes_, NULLPAD, no terminator) lose their last
    #    character when read as SwiftSSL reads them; ours do not.
    with h5py.File(os.path.join(folder, "strings.h5"), "w") as f:
        f.attrs["plain"] = np.bytes_("backbone")
        convert_pth.set_string_attribute(f, "ours", "backbone")
        f.attrs["variable"] = "backbone"
        seen = {name: read_string_like_swiftssl(f, name) for name in ("plain", "ours", "variable")}
    print(f"ok  string attributes as SwiftSSL reads them: {seen}")
    assert seen["ours"] == "backbone" and seen["variable"] == "backbone"

    if args.cli:
        out = os.path.join(folder, "dino.h5")
        os.makedirs(os.path.join(folder, "eval"))  # ssl-run eval does not create its --output folder
        command = [args.cli, "eval", "--checkpoint", out, "--train-count", "200", "--test-count", "100",
                   "--mosaic-count", "20", "--disable-random-baseline", "--output", os.path.join(folder, "eval")]
        print("$ " + " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        print(result.stdout.strip())
        if result.returncode != 0:
            print(result.stderr.strip())
            raise AssertionError(f"ssl-run eval failed with status {result.returncode}")
        print("ok  ssl-run eval accepted the converted file")
    print(f"All checks passed (files in {folder}).")


if __name__ == "__main__":
    main()
