#!/usr/bin/env python3
"""How far can labels take this backbone on the dense probes? A supervised ceiling, for diagnosis.

Trains the backbone of a given checkpoint's architecture (same ViT, same PyTorch keys, a fresh
initialisation) with labels, then writes it as a backbone file that `ssl-run eval --checkpoint`
probes exactly as it probes a self-supervised run (image k-NN, scene retrieval, linear
segmentation, beside the random backbone and raw pixels). Three kinds of supervision:

* `image --look plain`: classify Fashion-MNIST images (28 px, grey on black), a linear head on
  the class token after the final norm: the best an image-level target on this data can teach;
* `image --look garments`: the same images drawn in the scenes' look (tinted, on a random
  textured background, as `RandomBackground` draws them): image-level labels, the scenes' look;
* `dense`: per-patch soft labels of the scenes themselves (a numpy replica of
  `FashionMNISTScenes`, another random stream), a linear head on each patch token: what this
  architecture's patch tokens can hold about the scenes at all;
* `region`: one label per class region of each scene, a linear head on the patch tokens pooled
  over the region (each patch weighted by its share of the region's pixels): what an objective
  on mask-pooled patch tokens (DetCon's family) passes into the patches, given true masks;
* `colour-region`: the same with the masks an unsupervised grouping gives instead: k-means into
  4 regions over each scene's patches by their raw pixels (`region_purity.kmeans`), each region's
  target the mean soft label of its patches: what such masks cost against true ones.

`--pseudo-labels CLUSTERS.npy` (with `dense`) replaces each training image's class by its
cluster: one integer per Fashion-MNIST training image, in the data set's order, e.g. k-means of
a self-supervised teacher's image features (`ssl-run features --split train`, whose
`dataset_indices` give the order). The scenes' pixels then carry the cluster of the garment they
show: what a per-patch objective could reach if each patch knew which garment it lies on and
that garment's target came from the teacher instead of a label.

Usage:
  python3 tools/diagnostics/supervised_ceiling.py CHECKPOINT OUTPUT.h5 image --look plain [--steps N]
  python3 tools/diagnostics/supervised_ceiling.py CHECKPOINT OUTPUT.h5 dense|region|colour-region [--steps N]
  python3 tools/diagnostics/supervised_ceiling.py CHECKPOINT OUTPUT.h5 dense --pseudo-labels CLUSTERS.npy
"""

import argparse, json, math, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F, h5py

sys.path.insert(0, os.path.dirname(__file__))
from scene_readouts import ROOT, idx, scenes, normalise, soft_labels  # noqa: E402
from region_purity import kmeans  # noqa: E402

torch.set_num_threads(2)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.attn.proj(F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(B, N, D))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class ViT(nn.Module):
    """DINO's `VisionTransformer` keys (no stem), position embeddings interpolated as DINO does."""

    def __init__(self, config):
        super().__init__()
        dim, patch, grid = config["embedDimension"], config["patchSize"], config["imageSize"] // config["patchSize"]
        self.patch = patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, config["heads"]) for _ in range(config["depth"]))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x):
        x = self.patch_embed.proj(x)
        B, D, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        pos = self.pos_embed
        r = int(math.sqrt(pos.shape[1] - 1))
        if h != r or w != r:
            grid = pos[:, 1:].reshape(1, r, r, D).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, scale_factor=((h + 0.1) / r, (w + 0.1) / r), mode="bicubic")
            pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h * w, D)], 1)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], 1) + pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def garments_look(images, rng):
    """Each 28-pixel grey image tinted on its own textured background (`RandomBackground`)."""
    count, side = len(images), images.shape[1]
    ys, xs = np.mgrid[0:side, 0:side]
    direction = rng.uniform(0, 2 * math.pi, (count, 3))
    frequency = rng.uniform(0.5, 2, (count, 3)) * 2 * math.pi / (2 * side)
    phase = rng.uniform(0, 2 * math.pi, (count, 3))
    waves = np.sin(frequency[:, :, None, None] * (np.cos(direction)[:, :, None, None] * xs + np.sin(direction)[:, :, None, None] * ys)
                   + phase[:, :, None, None])  # count, 3 waves, side, side
    base = rng.uniform(60, 150, (count, 3))
    amplitudes = rng.uniform(8, 30, (count, 3, 3))  # count, channel, wave
    background = np.clip(np.round(base[:, :, None, None] + np.einsum("ncw,nwyx->ncyx", amplitudes, waves)), 0, 255)
    tint = rng.uniform(0.55, 1, (count, 3))
    grey = images.astype(np.float64)
    garment = grey[:, None] * tint[:, :, None, None]
    out = np.where((grey > 24)[:, None], garment, background)
    return out.transpose(0, 2, 3, 1).astype(np.uint8)


def augment(x, rng):
    """A random shift of up to 3 pixels (zero padding) and a horizontal flip, per image."""
    padded = F.pad(x, (3, 3, 3, 3))
    side = x.shape[-1]
    out = torch.empty_like(x)
    for i in range(len(x)):
        top, left = rng.integers(0, 7, 2)
        view = padded[i, :, top:top + side, left:left + side]
        out[i] = view.flip(-1) if rng.random() < 0.5 else view
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", help="a run's checkpoint.h5: the architecture to train")
    parser.add_argument("output", help="the backbone file to write")
    parser.add_argument("task", choices=["image", "dense", "region", "colour-region"])
    parser.add_argument("--look", choices=["plain", "garments"], default="plain")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pseudo-labels", help="dense only: a .npy of one cluster per training image, used as its class")
    arguments = parser.parse_args()
    if arguments.pseudo_labels and arguments.task != "dense":
        sys.exit("--pseudo-labels goes with the dense task only.")

    with h5py.File(arguments.checkpoint) as file:
        config = json.loads(file.attrs["configuration"])["backbone"]
    if config.get("stemChannels"):
        sys.exit(f"{arguments.checkpoint}: its backbone has a convolutional stem, which this tool does not model; "
                 "give a checkpoint of a run without --stem.")
    torch.manual_seed(arguments.seed)
    rng = np.random.default_rng(arguments.seed)
    model = ViT(config)
    images = idx(f"{ROOT}/train-images-idx3-ubyte.gz")
    labels = idx(f"{ROOT}/train-labels-idx1-ubyte.gz").astype(np.int64)
    if arguments.pseudo_labels:
        labels = np.load(arguments.pseudo_labels).astype(np.int64)
        if labels.shape != (len(images),) or labels.min() < 0:
            sys.exit(f"{arguments.pseudo_labels}: expected {len(images)} non-negative cluster numbers, got shape {labels.shape}.")
    classes = 10 if arguments.task == "image" else int(labels.max()) + 2  # the scenes' background is class 0
    head = nn.Linear(config["embedDimension"], classes)
    parameters = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=arguments.learning_rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, arguments.learning_rate, total_steps=arguments.steps, pct_start=0.05)

    started = time.time()
    for step in range(arguments.steps):
        if arguments.task == "image":
            chosen = rng.integers(0, len(images), arguments.batch)
            if arguments.look == "plain":
                pixels = np.repeat(images[chosen][..., None], 3, -1)
            else:
                pixels = garments_look(images[chosen], rng)
            x = augment(normalise(pixels), rng)
            loss = F.cross_entropy(head(model(x)[:, 0]), torch.tensor(labels[chosen]))
        else:
            canvas = (56 + config["patchSize"] - 1) // config["patchSize"] * config["patchSize"]
            pixels, pixel_labels = scenes(images, labels, arguments.batch, canvas=canvas, rng=rng)
            targets = torch.tensor(soft_labels(pixel_labels, canvas // config["patchSize"], classes))
            patches = model(normalise(pixels))[:, 1:]
            if arguments.task == "dense":
                loss = -(targets * F.log_softmax(head(patches), -1)).sum(-1).mean()
            elif arguments.task == "colour-region":
                patch = config["patchSize"]; grid = canvas // patch
                x = normalise(pixels)
                cells = x.reshape(len(x), 3, grid, patch, grid, patch).permute(0, 2, 4, 1, 3, 5).reshape(len(x), grid * grid, -1).numpy()
                regions = np.stack([kmeans(c - c.mean(1, keepdims=True)) for c in cells])  # scenes, patches
                members = torch.tensor(np.eye(4, dtype=np.float32)[regions])  # scenes, patches, regions
                present = members.sum(1) > 0
                weights = members / members.sum(1, keepdim=True).clamp_min(1)
                pooled = torch.einsum("bpr,bpd->brd", weights, patches)[present]
                region_targets = torch.einsum("bpr,bpc->brc", weights, targets.float())[present]
                loss = -(region_targets * F.log_softmax(head(pooled), -1)).sum(-1).mean()
            else:
                # The regions' pooled tokens: [scenes, classes, dim], weights normalised over patches.
                shares = targets.float()
                present = shares.sum(1) > 0
                pooled = torch.einsum("bpc,bpd->bcd", shares / shares.sum(1, keepdim=True).clamp_min(1e-8), patches)
                classes_present = torch.arange(classes).expand(len(pooled), -1)[present]
                loss = F.cross_entropy(head(pooled[present]), classes_present)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == arguments.steps - 1:
            print(f"step {step}/{arguments.steps} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)

    temporary = arguments.output + ".partial"
    with h5py.File(temporary, "w") as file:
        file.attrs["format_version"] = 1.0
        file.attrs["kind"] = np.bytes_("backbone")  # fixed-length strings, as the library writes them
        file.attrs["architecture"] = np.bytes_(json.dumps(config))
        file.attrs["source"] = np.bytes_(f"tools/diagnostics/supervised_ceiling.py {arguments.task} look={arguments.look} "
                                         f"steps={arguments.steps} pseudo-labels={arguments.pseudo_labels}")
        for key, value in model.state_dict().items():
            file.create_dataset(key, data=value.detach().numpy(), fletcher32=True)
    os.replace(temporary, arguments.output)
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()
