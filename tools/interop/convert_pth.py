#!/usr/bin/env python3
"""Convert a PyTorch DINO / SelfPatch `.pth` checkpoint into a SwiftSSL backbone file.

Accepted inputs:
  * a backbone state dict (DINO's released `dino_deitsmall16_pretrain.pth`, timm-style keys);
  * a full training checkpoint (DINO `main_dino.py`, SelfPatch `main_selfpatch.py`): a dict with
    `teacher` / `student` entries (choose with --network; default teacher);
  * a dict holding the weights under `state_dict` or `model`.
Prefixes `module.` (DDP) and `backbone.` are stripped (and any given with --strip). DINO's
`head.*` and SelfPatch's `ca_head.*`, `c_head.*`, `p_head.*` tensors are head tensors: dropped,
or with --heads-too stored under the group `heads/<key>`.

The output is what `ssl-run export` writes and `BackboneFile.load` reads (`ssl-run eval`,
`ssl-run features`): backbone tensors as float32 datasets at the root under their timm/DINO
keys (Fletcher-32 checksummed), attributes `format_version` = 1.0, `kind` = "backbone",
`architecture` (JSON `VisionTransformerConfiguration`, inferred from the tensor shapes; the head
count cannot be inferred: --heads, default D/64) and `source`.

Example:
  python convert_pth.py dino_deitsmall16_pretrain.pth dino_vits16.h5 --heads 6
  python convert_pth.py checkpoint.pth selfpatch_teacher.h5 --network teacher --heads 6 --heads-too
"""

import argparse
import json
import math
import os
import re
import sys

import h5py
import numpy as np
import torch

FORMAT_VERSION = 1.0
HEAD_PREFIXES = ("head.", "ca_head.", "c_head.", "p_head.")
BACKBONE_KEY = re.compile(
    r"^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)"
    r"|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias))$")


class ConversionError(Exception):
    pass


# MARK: Reading the .pth


def load_pth(path, unsafe=False):
    """The object stored in `path`, loaded with `weights_only=True` (DINO's `args` Namespace is
    allowed) unless `unsafe`."""
    if unsafe:
        return torch.load(path, map_location="cpu", weights_only=False)
    import argparse as _argparse

    torch.serialization.add_safe_globals([_argparse.Namespace])
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - explain how to proceed
        raise ConversionError(
            f"{path}: torch.load(weights_only=True) failed ({str(error).splitlines()[0]}). If you trust the "
            "file, retry with --unsafe-load.") from error


def select_state(obj, network):
    """The flat state dict to convert and a description of where it was found."""
    if not isinstance(obj, dict):
        raise ConversionError(f"the file holds a {type(obj).__name__}, not a dict")
    if "teacher" in obj or "student" in obj:
        if network not in obj:
            raise ConversionError(f"no '{network}' entry; the checkpoint has {sorted(k for k in obj if isinstance(obj[k], dict))}")
        state, where = obj[network], f"['{network}']"
    elif isinstance(obj.get("state_dict"), dict):
        state, where = obj["state_dict"], "['state_dict']"
    elif isinstance(obj.get("model"), dict):
        state, where = obj["model"], "['model']"
    else:
        state, where = obj, "(state dict)"
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
    if not tensors:
        raise ConversionError(f"{where} holds no tensors")
    return tensors, where


def strip_prefixes(key, prefixes):
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def split_state(tensors, extra_prefixes=(), drop_unknown=False):
    """(backbone tensors, head tensors, dropped keys), keys stripped of wrapper prefixes."""
    backbone, heads, unknown = {}, {}, []
    prefixes = ("module.", "backbone.") + tuple(extra_prefixes)
    for original, tensor in tensors.items():
        key = strip_prefixes(original, prefixes)
        target = heads if key.startswith(HEAD_PREFIXES) else backbone if BACKBONE_KEY.match(key) else None
        if target is None:
            unknown.append(original)
            continue
        if key in target:
            raise ConversionError(f"two tensors map to '{key}' (one is '{original}')")
        target[key] = tensor.detach().to(torch.float32).cpu().numpy()
    if unknown and not drop_unknown:
        raise ConversionError(
            f"{len(unknown)} keys are neither ViT backbone nor head tensors: {unknown[:8]}"
            f"{' …' if len(unknown) > 8 else ''} (use --strip PREFIX, or --drop-unknown to leave them out)")
    return backbone, heads, unknown


# MARK: The architecture


def infer_architecture(state, heads=None):
    """Our `VisionTransformerConfiguration` fields for a DINO/SelfPatch ViT state dict; checks
    that every expected tensor is there with a consistent shape."""
    def need(key):
        if key not in state:
            raise ConversionError(f"missing backbone tensor '{key}'")
        return state[key]

    patch = need("patch_embed.proj.weight")
    if patch.ndim != 4 or patch.shape[1] != 3 or patch.shape[2] != patch.shape[3]:
        raise ConversionError(f"patch_embed.proj.weight {patch.shape}: expected [D, 3, p, p]")
    dimension, patch_size = patch.shape[0], patch.shape[2]
    class_token = "cls_token" in state
    if class_token and tuple(state["cls_token"].shape) != (1, 1, dimension):
        raise ConversionError(f"cls_token {state['cls_token'].shape}: expected (1, 1, {dimension})")
    position = need("pos_embed")
    if position.ndim != 3 or position.shape[0] != 1 or position.shape[2] != dimension:
        raise ConversionError(f"pos_embed {position.shape}: expected (1, N, {dimension})")
    patches = position.shape[1] - (1 if class_token else 0)
    grid = math.isqrt(patches)
    if grid * grid != patches:
        raise ConversionError(
            f"pos_embed has {patches} patch rows, not a square grid"
            + ("" if class_token else " (a class-token row without cls_token?)"))
    indices = {int(m.group(1)) for k in state for m in [re.match(r"^blocks\.(\d+)\.", k)] if m}
    depth = len(indices)
    if indices != set(range(depth)) or depth == 0:
        raise ConversionError(f"blocks are {sorted(indices)}, expected 0..n-1")
    hidden = need("blocks.0.mlp.fc1.weight").shape[0]
    if hidden % dimension:
        raise ConversionError(f"MLP hidden width {hidden} is not a multiple of D = {dimension}")
    d, h = dimension, hidden
    block_shapes = {
        "norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
        "mlp.fc1.weight": (h, d), "mlp.fc1.bias": (h,), "mlp.fc2.weight": (d, h), "mlp.fc2.bias": (d,)}
    expected = {"patch_embed.proj.bias": (d,)}
    expected.update({f"blocks.{i}.{part}": shape for i in range(depth) for part, shape in block_shapes.items()})
    final_norm = "norm.weight" in state or "norm.bias" in state
    if final_norm:
        expected.update({"norm.weight": (dimension,), "norm.bias": (dimension,)})
    for key, shape in expected.items():
        if tuple(need(key).shape) != shape:
            raise ConversionError(f"'{key}' is {tuple(state[key].shape)}, expected {shape}")
    heads = heads or max(dimension // 64, 1)
    if dimension % heads:
        raise ConversionError(f"D = {dimension} is not divisible by {heads} heads")
    return {
        "embedDimension": int(dimension), "depth": depth, "heads": int(heads), "mlpRatio": hidden // dimension,
        "patchSize": int(patch_size), "imageSize": int(grid * patch_size), "classToken": class_token,
        "finalNorm": final_norm, "positionEmbedding": "learned", "freezePatchProjection": False,
        "dropPathRate": 0, "layerNormEpsilon": 1e-6,
    }


# MARK: Writing


def set_string_attribute(obj, name, value):
    """A fixed-length, NUL-terminated ASCII/UTF-8 string attribute sized len + 1: exactly what
    SwiftSSL's `HDF5File.setAttribute` writes. (h5py's `np.bytes_` gives a NULLPAD string of
    exactly len bytes; SwiftSSL reads it into a NULLTERM buffer of the same width, which drops the
    last character, so "backbone" would be read as "backbon".)"""
    data = value.encode("utf-8")
    string_type = h5py.h5t.C_S1.copy()
    string_type.set_size(len(data) + 1)
    string_type.set_strpad(h5py.h5t.STR_NULLTERM)
    if name in obj.attrs:
        del obj.attrs[name]
    attribute = h5py.h5a.create(obj.id, name.encode(), string_type, h5py.h5s.create(h5py.h5s.SCALAR))
    attribute.write(np.array(data + b"\0", dtype=f"S{len(data) + 1}"), mtype=string_type)


def write_tensor(group, key, array):
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim == 0 or array.size == 0:
        group.create_dataset(key, data=array)
    else:  # as SwiftSSL: one chunk per dataset, Fletcher-32 checksum
        group.create_dataset(key, data=array, chunks=array.shape, fletcher32=True)


def write_backbone_file(path, architecture, backbone, heads=None, source=""):
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with h5py.File(temporary, "w") as f:
            f.attrs.create("format_version", np.float64(FORMAT_VERSION))
            set_string_attribute(f, "kind", "backbone")
            set_string_attribute(f, "architecture", json.dumps(architecture, sort_keys=True, separators=(",", ":")))
            set_string_attribute(f, "source", source)
            for key in sorted(backbone):
                write_tensor(f, key, backbone[key])
            if heads:
                group = f.create_group("heads")
                for key in sorted(heads):
                    write_tensor(group, key, heads[key])
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def convert(source, output, network="teacher", heads=None, heads_too=False, strip=(), drop_unknown=False,
            unsafe=False, verbose=True):
    """Converts `source` (.pth) into the backbone file `output`; returns (architecture, backbone, heads)."""
    tensors, where = select_state(load_pth(source, unsafe), network)
    backbone, head_tensors, dropped = split_state(tensors, strip, drop_unknown)
    architecture = infer_architecture(backbone, heads)
    write_backbone_file(output, architecture, backbone, head_tensors if heads_too else None,
                        source=f"{os.path.abspath(source)} {where}")
    if verbose:
        count = sum(v.size for v in backbone.values())
        print(f"Read {source} {where}: {len(tensors)} tensors")
        print(f"Wrote {output}: {len(backbone)} backbone tensors ({count:,} parameters)"
              + (f", {len(head_tensors)} head tensors under heads/" if heads_too and head_tensors else "")
              + (f"; {len(head_tensors)} head tensors left out (--heads-too keeps them)" if head_tensors and not heads_too else ""))
        if dropped:
            print(f"  dropped {len(dropped)} unknown keys: {dropped[:8]}{' …' if len(dropped) > 8 else ''}")
        print("  architecture: " + json.dumps(architecture, sort_keys=True))
        if heads is None:
            print(f"  note: heads = D/64 = {architecture['heads']} (not stored in .pth files; pass --heads if different)")
    return architecture, backbone, head_tensors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the .pth file")
    parser.add_argument("output", help="the backbone file to write (.h5)")
    parser.add_argument("--network", default="teacher", help="teacher or student, for training checkpoints")
    parser.add_argument("--heads", type=int, help="attention heads (default D/64: 3 for ViT-Ti, 6 for ViT-S)")
    parser.add_argument("--heads-too", action="store_true", help="also store head tensors under heads/<key>")
    parser.add_argument("--strip", action="append", default=[], metavar="PREFIX", help="another key prefix to strip")
    parser.add_argument("--drop-unknown", action="store_true", help="leave out keys that are not ViT or head tensors")
    parser.add_argument("--unsafe-load", action="store_true", help="torch.load with weights_only=False (trusted files)")
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.output, args.network, args.heads, args.heads_too, args.strip, args.drop_unknown,
                args.unsafe_load)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
