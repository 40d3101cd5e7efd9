#!/usr/bin/env python3
"""Load a SwiftSSL checkpoint or backbone file into a timm VisionTransformer and compute features.

The backbone is rebuilt from the architecture stored in the file (the checkpoint's
`configuration` attribute, or a backbone file's `architecture` attribute) and loaded with
`strict=True`. Image features are defined as in `ssl-run features`: the class token after the
final norm, or, for a backbone without class token, the mean of the output patch tokens (after
the final norm when the backbone has one; SelfPatch's original backbone has neither).

Inputs (`--inputs FILE`, dataset `images`):
  * float32 `[n, 3, H, W]`: used as the network input as is (already normalised);
  * uint8 `[n, H, W]` or `[n, H, W, C]` (C = 1 or 3; the format `ssl-run --data file.h5` reads):
    preprocessed as our evaluation does (PIL bicubic resize to the model's image size when the
    size differs, /255, ImageNet mean/std).
Without `--inputs`, N(0,1) images `[count, 3, H, W]` are drawn and saved to `--save-inputs`.

`--write-images FILE` writes Fashion-MNIST test images as a uint8 image file whose `labels` are
the image indices 0..n-1, so that `ssl-run features --data FILE` (which shuffles) records in its
`labels` dataset which image each feature row belongs to; `--compare` uses that to align rows.

Examples:
  python load_checkpoint.py runs/main/checkpoint.h5
  python load_checkpoint.py --write-images /tmp/x/images.h5 --count 64
  ssl-run features --checkpoint runs/main/checkpoint.h5 --data /tmp/x/images.h5 --output /tmp/x/ours.h5
  python load_checkpoint.py runs/main/checkpoint.h5 --inputs /tmp/x/images.h5 --compare /tmp/x/ours.h5
"""

import argparse
import gzip
import json
import os
import sys
from functools import partial

import h5py
import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FASHION_MNIST_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
FORMAT_VERSION = 1


def _text(value):
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


# MARK: Reading our files


def read_backbone(path, network="teacher"):
    """The architecture (dict of our `VisionTransformerConfiguration` fields), the backbone state
    dict (numpy arrays by timm/DINO key) and a dict describing where they came from."""
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        version = attrs.get("format_version")
        if version is None:
            raise SystemExit(f"{path}: not a SwiftSSL file (no format_version attribute)")
        if int(version) != FORMAT_VERSION:
            raise SystemExit(f"{path}: format version {version}, this tool reads {FORMAT_VERSION}")
        info = {"path": path, "format_version": float(version)}
        if _text(attrs.get("kind", "")) == "backbone":
            architecture = json.loads(_text(attrs["architecture"]))
            state = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset)}
            info.update(kind="backbone", group="/", source=_text(attrs.get("source", "")))
            info["extra_groups"] = sorted(k for k, v in f.items() if isinstance(v, h5py.Group))
        else:
            if "configuration" not in attrs:
                raise SystemExit(f"{path}: neither a backbone file (kind) nor a checkpoint (configuration)")
            configuration = json.loads(_text(attrs["configuration"]))
            architecture = configuration["backbone"]
            # As BackboneFile.load: a checkpoint without a teacher gives its student.
            used = network if network in f else "student"
            if f"{used}/backbone" not in f:
                raise SystemExit(f"{path}: has no '{used}/backbone' group")
            state = {k: v[()] for k, v in f[f"{used}/backbone"].items()}
            info.update(
                kind="checkpoint", group=f"/{used}/backbone", network=used,
                epoch=float(attrs.get("epoch", float("nan"))),
                tasks=[t["name"] for t in configuration.get("tasks", [])],
                heads_groups=sorted(k for k in f[used].keys() if k != "backbone"))
    return architecture, state, info


# MARK: The timm model


def build_model(architecture):
    """A timm `VisionTransformer` with our backbone's architecture and state-dict keys."""
    a = architecture
    class_token = bool(a.get("classToken", True))
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=a["imageSize"], patch_size=a["patchSize"], in_chans=3, num_classes=0,
        embed_dim=a["embedDimension"], depth=a["depth"], num_heads=a["heads"], mlp_ratio=a.get("mlpRatio", 4),
        qkv_bias=True, class_token=class_token,
        # Our pos_embed has a row for the class token when there is one (DINO's layout): timm's default.
        no_embed_class=False,
        # Our image feature: the class token, or the mean of the patch tokens (no extra norm).
        global_pool="token" if class_token else "avg", fc_norm=False,
        final_norm=bool(a.get("finalNorm", True)),
        norm_layer=partial(nn.LayerNorm, eps=a.get("layerNormEpsilon", 1e-6)), act_layer=nn.GELU,
        weight_init="skip")


def load_model(path, network="teacher", verbose=True):
    """The timm model loaded strictly from `path`, its architecture and the file description."""
    architecture, state, info = read_backbone(path, network)
    model = build_model(architecture)
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()}
    result = model.load_state_dict(tensors, strict=True)  # raises listing missing/unexpected/shape errors
    model.eval()
    if verbose:
        parameters = sum(t.numel() for t in tensors.values())
        print(f"Loaded {path} ({info['kind']}, {info['group']}), strict=True: "
              f"{len(tensors)} tensors, {parameters:,} parameters; "
              f"missing {result.missing_keys}, unexpected {result.unexpected_keys}")
        if info["kind"] == "checkpoint":
            if info["network"] != network:
                print(f"  note: no '{network}' network in the checkpoint; loaded '{info['network']}'")
            print(f"  epoch {info['epoch']:g}, tasks {info['tasks']}, "
                  f"other groups of /{info['network']}: {info['heads_groups']}")
        else:
            if info.get("source"):
                print(f"  source: {info['source']}")
            if info.get("extra_groups"):
                print(f"  other groups (not part of the backbone): {info['extra_groups']}")
        print("  architecture: " + json.dumps(architecture, sort_keys=True))
        print(f"  timm: {type(model).__name__}(img_size={architecture['imageSize']}, "
              f"patch_size={architecture['patchSize']}, embed_dim={architecture['embedDimension']}, "
              f"depth={architecture['depth']}, num_heads={architecture['heads']}, "
              f"class_token={model.cls_token is not None}, global_pool='{model.global_pool}', "
              f"final_norm={not isinstance(model.norm, nn.Identity)}, num_classes=0)")
    return model, architecture, info


@torch.no_grad()
def extract_features(model, images, batch_size=64, patches=False):
    """`image_features` [n, D] (and the output patch tokens [n, N, D]) as `ssl-run features`."""
    image_rows, patch_rows = [], []
    for start in range(0, images.shape[0], batch_size):
        tokens = model.forward_features(images[start:start + batch_size])  # after the final norm
        image_rows.append(model.forward_head(tokens, pre_logits=True))  # token 0, or patch mean
        if patches:
            patch_rows.append(tokens[:, model.num_prefix_tokens:])
    return torch.cat(image_rows), (torch.cat(patch_rows) if patches else None)


# MARK: Inputs


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    count, rows, columns = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, columns)


def write_image_file(path, count, start=0, source=FASHION_MNIST_TEST):
    """Fashion-MNIST test images start..<start+count as uint8 [n, 28, 28], labels = 0..n-1."""
    images = read_idx_images(source)[start:start + count]
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=np.arange(len(images), dtype=np.int64))
        f.attrs["source"] = np.bytes_(f"{source} images {start}..<{start + len(images)}")
    print(f"Wrote {path}: {len(images)} uint8 images {images.shape[1:]}, labels = indices 0..{len(images) - 1}")


def preprocess(pixels, size):
    """uint8 images [n, H, W(, C)] -> normalised float32 [n, 3, size, size], as our
    `EvaluationImages.classification` (grey replicated to RGB, PIL bicubic resize, ImageNet stats)."""
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    if pixels.shape[1:3] != (size, size):
        from PIL import Image

        pixels = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BICUBIC)) for p in pixels])
    normalised = (pixels.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))


def load_inputs(path, size):
    """(images tensor, labels or None, kind) from an inputs file."""
    with h5py.File(path, "r") as f:
        stored = f["images"][()]
        labels = f["labels"][()] if "labels" in f else None
    if stored.dtype == np.uint8:
        return preprocess(stored, size), labels, "uint8 images"
    if stored.ndim != 4 or stored.shape[1] != 3:
        raise SystemExit(f"{path}: float 'images' must be [n, 3, H, W], got {stored.shape}")
    return torch.from_numpy(stored.astype(np.float32)), labels, "float tensor"


# MARK: Comparison


def describe(name, values):
    v = values.double()
    norms = v.norm(dim=-1)
    print(f"  {name}: shape {list(values.shape)}, mean {v.mean():.5f}, std {v.std():.5f}, "
          f"min {v.min():.5f}, max {v.max():.5f}, row norm {norms.mean():.4f} ± {norms.std():.4f}, "
          f"finite {bool(torch.isfinite(v).all())}")


def difference(name, ours, theirs):
    ours, theirs = ours.double(), theirs.double()
    absolute = (ours - theirs).abs().max().item()
    relative = absolute / max(theirs.abs().max().item(), 1e-30)
    row_relative = ((ours - theirs).norm(dim=-1) / theirs.norm(dim=-1).clamp_min(1e-30)).max().item()
    cosine = torch.nn.functional.cosine_similarity(ours.flatten(1), theirs.flatten(1)).min().item()
    print(f"  {name}: max |ours - pytorch| = {absolute:.3e}, relative to max |pytorch| = {relative:.3e}, "
          f"worst row ‖diff‖/‖pytorch‖ = {row_relative:.3e}, min cosine = {cosine:.8f}")
    return relative


def compare(path, image_features, patch_features, input_labels, tolerance):
    with h5py.File(path, "r") as f:
        ours = torch.from_numpy(f["image_features"][()].astype(np.float32))
        ours_patches = torch.from_numpy(f["patch_features"][()].astype(np.float32)) if "patch_features" in f else None
        ours_labels = f["labels"][()] if "labels" in f else None
    n = image_features.shape[0]
    if input_labels is not None and np.array_equal(input_labels, np.arange(n)) and ours_labels is not None:
        # Inputs labelled by index: our (shuffled) rows name their images.
        rows = torch.from_numpy(np.asarray(ours_labels, dtype=np.int64))
        if rows.min() < 0 or rows.max() >= n:
            raise SystemExit(f"{path}: labels outside 0..{n - 1}; it was not made from these inputs")
        print(f"Comparing {len(rows)} rows of {path} with PyTorch, aligned by its labels (= input indices)")
    else:
        if ours.shape[0] != n:
            raise SystemExit(f"{path}: {ours.shape[0]} rows, the inputs have {n}")
        rows = torch.arange(n)
        print(f"Comparing {path} with PyTorch row by row")
    if ours.shape[1] != image_features.shape[1]:
        raise SystemExit(f"{path}: features of width {ours.shape[1]}, the model gives {image_features.shape[1]}")
    worst = difference("image_features", ours, image_features[rows])
    if ours_patches is not None and patch_features is not None:
        worst = max(worst, difference("patch_features", ours_patches, patch_features[rows]))
    verdict = "OK" if worst <= tolerance else "MISMATCH"
    print(f"{verdict}: worst relative difference {worst:.3e} (tolerance {tolerance:g})")
    return worst <= tolerance


# MARK: Command line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="checkpoint.h5 or a backbone file (ssl-run export)")
    parser.add_argument("--network", default="teacher", help="teacher or student (checkpoints only)")
    parser.add_argument("--inputs", help="HDF5 file with 'images': float32 [n,3,H,W] or uint8 [n,H,W(,C)]")
    parser.add_argument("--count", type=int, default=64, help="random images to draw / images to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random images")
    parser.add_argument("--save-inputs", default="inputs.h5", help="where to save the random images")
    parser.add_argument("--output", default="pytorch_features.h5", help="where to write the PyTorch features")
    parser.add_argument("--patches", action="store_true", help="also compute and store the patch tokens")
    parser.add_argument("--compare", metavar="FEATURES_H5", help="our features (ssl-run features) on the same inputs")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest accepted difference relative to max |pytorch| (default 1e-4)")
    parser.add_argument("--write-images", metavar="FILE",
                        help="write --count Fashion-MNIST test images (from --start) for ssl-run --data, and stop")
    parser.add_argument("--start", type=int, default=0, help="first Fashion-MNIST image for --write-images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    if args.write_images:
        write_image_file(args.write_images, args.count, args.start)
        return 0
    if not args.checkpoint:
        parser.error("a checkpoint is required (unless --write-images)")
    torch.set_num_threads(args.threads)

    model, architecture, info = load_model(args.checkpoint, args.network)
    size = architecture["imageSize"]
    if args.inputs:
        images, labels, kind = load_inputs(args.inputs, size)
        print(f"Inputs: {args.inputs} ({kind}) -> {list(images.shape)}")
    else:
        generator = torch.Generator().manual_seed(args.seed)
        images = torch.randn(args.count, 3, size, size, generator=generator)
        labels = None
        with h5py.File(args.save_inputs, "w") as f:
            f.create_dataset("images", data=images.numpy())
            f.attrs["description"] = np.bytes_(f"N(0,1) images, torch seed {args.seed}, already normalised")
        print(f"Inputs: {args.count} N(0,1) images {list(images.shape)} (seed {args.seed}), saved to {args.save_inputs}")
    if images.shape[2] != size or images.shape[3] != size:
        raise SystemExit(f"inputs are {images.shape[2]}x{images.shape[3]}; the model takes {size}x{size} "
                         "(timm resizes pos_embed differently from DINO/SwiftSSL, so other sizes are not compared)")

    image_features, patch_features = extract_features(model, images, patches=args.patches or bool(args.compare))
    print("PyTorch features:")
    describe("image_features", image_features)
    if patch_features is not None:
        describe("patch_features", patch_features)
    with h5py.File(args.output, "w") as f:
        f.create_dataset("image_features", data=image_features.numpy())
        if args.patches and patch_features is not None:
            f.create_dataset("patch_features", data=patch_features.numpy())
        if labels is not None:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        f.attrs["source"] = np.bytes_(f"{os.path.abspath(args.checkpoint)} ({info.get('network', 'backbone')})")
        f.attrs["inputs"] = np.bytes_(os.path.abspath(args.inputs or args.save_inputs))
    print(f"Wrote {args.output}")

    if args.compare:
        return 0 if compare(args.compare, image_features, patch_features, labels, args.tolerance) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
