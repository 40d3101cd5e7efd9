#!/usr/bin/env python3
"""Which read-out of a checkpoint's backbone carries garment classes in the Fashion-MNIST scenes?

A diagnostic, not a probe of record: the scenes are a numpy replica of `FashionMNISTScenes` (the
same drawing recipe, another random stream), and the retrieval is `PatchNeighborProbe`'s
(memory of every train patch with its soft label, k = 30 cosine neighbours, softmax at
temperature 0.02, bilinear upsampling, mIoU over 11 classes). It prints retrieval mIoU for:

* two oracles: the true soft labels as features (the probe's ceiling at this patch grid) and
  foreground/background fractions alone (what knowing where garments are, but not which, gives);
* the teacher's patch tokens after the final norm (what `ssl-run eval` reads) and after each block;
* sliding-window patch tokens (windows of the training size, each patch's tokens averaged over the
  windows that cover it, as mmsegmentation's `slide` inference does);
* the class token of the window centred on each patch;
* raw pixels: each patch's pixels, and the window's.

Usage: python3 tools/diagnostics/scene_readouts.py runs/long/checkpoint.h5 [train scenes, default 200]
"""

import gzip, sys, math, json
import numpy as np, torch, torch.nn.functional as F, h5py

torch.set_num_threads(1)
rng = np.random.default_rng(0)
ROOT = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def scenes(images, labels, count, canvas=56, rng=rng):
    out = np.zeros((count, canvas, canvas, 3), np.uint8)
    lab = np.zeros((count, canvas, canvas), np.int64)
    ys, xs = np.mgrid[0:canvas, 0:canvas]
    for s in range(count):
        waves = []
        for _ in range(3):
            d = rng.uniform(0, 2 * math.pi); fr = rng.uniform(0.5, 2) * 2 * math.pi / canvas
            waves.append(np.sin(fr * math.cos(d) * xs + fr * math.sin(d) * ys + rng.uniform(0, 2 * math.pi)))
        base = rng.uniform(60, 150, 3); amp = rng.uniform(8, 30, 9)
        img = np.stack([base[c] + sum(amp[3 * c + i] * waves[i] for i in range(3)) for c in range(3)], -1)
        img = np.clip(np.round(img), 0, 255)
        for _ in range(rng.integers(3, 6)):
            item = rng.integers(len(images)); side = int(round(28 * rng.uniform(0.6, 1.4)))
            top = rng.integers(0, canvas - side + 1); left = rng.integers(0, canvas - side + 1)
            tint = rng.uniform(0.55, 1, 3)
            g = torch.tensor(images[item], dtype=torch.float32)[None, None]
            g = F.interpolate(g, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy()
            g = np.clip(np.round(g), 0, 255)
            mask = g > 24
            region = img[top:top + side, left:left + side]
            region[mask] = (g[mask][:, None] * tint).astype(np.uint8)
            lab[s, top:top + side, left:left + side][mask] = labels[item] + 1
        out[s] = img.astype(np.uint8)
    return out, lab


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalise(x):  # uint8 NHWC -> float NCHW
    return (torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2) / 255 - MEAN) / STD


class ViT:
    def __init__(self, path, network="teacher"):
        with h5py.File(path) as f:
            cfg = json.loads(f.attrs["configuration"])
            g = f[f"/{network}/backbone"]
            self.p = {}
            g.visititems(lambda k, v: self.p.__setitem__(k, torch.tensor(v[()])) if isinstance(v, h5py.Dataset) else None)
        b = cfg["backbone"]
        self.patch, self.depth, self.heads = b["patchSize"], b["depth"], b["heads"]
        self.stem = b.get("stemChannels", [])
        self.eps = b["layerNormEpsilon"]

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.p[name + ".weight"], self.p[name + ".bias"], self.eps)

    @torch.no_grad()
    def __call__(self, x):
        """The tokens after each block, and after the final norm."""
        p = self.p
        for i in range(len(self.stem)):
            x = F.gelu(F.conv2d(x, p[f"patch_embed.stem.{2 * i}.weight"], p[f"patch_embed.stem.{2 * i}.bias"], padding=1))
        x = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=self.patch)
        B, D, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        pos = p["pos_embed"]
        n = pos.shape[1] - 1; r = int(math.sqrt(n))
        if h != r or w != r:
            pp = pos[:, 1:].reshape(1, r, r, D).permute(0, 3, 1, 2)
            pp = F.interpolate(pp, scale_factor=((h + 0.1) / r, (w + 0.1) / r), mode="bicubic")
            pos = torch.cat([pos[:, :1], pp.permute(0, 2, 3, 1).reshape(1, h * w, D)], 1)
        x = torch.cat([p["cls_token"].expand(B, -1, -1), x], 1) + pos
        outs = []
        for i in range(self.depth):
            q = f"blocks.{i}."
            y = self.ln(x, q + "norm1")
            qkv = F.linear(y, p[q + "attn.qkv.weight"], p[q + "attn.qkv.bias"]).reshape(B, -1, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            x = x + F.linear(a.transpose(1, 2).reshape(B, -1, D), p[q + "attn.proj.weight"], p[q + "attn.proj.bias"])
            y = self.ln(x, q + "norm2")
            x = x + F.linear(F.gelu(F.linear(y, p[q + "mlp.fc1.weight"], p[q + "mlp.fc1.bias"])), p[q + "mlp.fc2.weight"], p[q + "mlp.fc2.bias"])
            outs.append(x)
        return outs, self.ln(x, "norm")


def soft_labels(lab, grid, classes=11):
    n, H, W = lab.shape; s = H // grid
    oh = np.eye(classes, dtype=np.float32)[lab]  # n H W classes
    return oh.reshape(n, grid, s, grid, s, classes).mean((2, 4)).reshape(n, grid * grid, classes)


def retrieval(train_f, train_lab, test_f, test_lab, grid, k=30, T=0.02):
    mem = F.normalize(torch.tensor(train_f.reshape(-1, train_f.shape[-1]), dtype=torch.float32), dim=1)
    sl = torch.tensor(soft_labels(train_lab, grid).reshape(-1, 11))
    q = F.normalize(torch.tensor(test_f.reshape(-1, test_f.shape[-1]), dtype=torch.float32), dim=1)
    sim = q @ mem.T
    v, i = sim.topk(k, dim=1)
    w = torch.softmax((v - v[:, :1]) / T, dim=1)
    pred = (w[:, :, None] * sl[i]).sum(1).reshape(len(test_f), grid, grid, 11).permute(0, 3, 1, 2)
    H = test_lab.shape[1]
    up = F.interpolate(pred, size=(H, H), mode="bilinear", align_corners=False).argmax(1).numpy()
    return miou(up, test_lab)


def miou(pred, lab):
    ious = []
    for c in range(11):
        inter = ((pred == c) & (lab == c)).sum(); union = ((pred == c) | (lab == c)).sum()
        if (lab == c).sum() > 0: ious.append(inter / union)
    return 100 * float(np.mean(ious)), 100 * float((pred == lab).mean())


def patch_pixels(x, patch):
    B, C, H, W = x.shape; g = H // patch
    return x.reshape(B, C, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, -1).numpy()


def windows(x, patch, size, fn, batch=512):
    """For each patch cell, the window of `size` px centred on it (reflect-padded) through fn."""
    B, C, H, W = x.shape; g = H // patch
    pad = (size - patch) // 2
    xp = F.pad(x, (pad, size - patch - pad, pad, size - patch - pad), mode="reflect")
    crops = xp.unfold(2, size, patch).unfold(3, size, patch)  # B C g g size size
    crops = crops.permute(0, 2, 3, 1, 4, 5).reshape(-1, C, size, size)
    out = torch.cat([torch.as_tensor(fn(crops[i:i + batch])) for i in range(0, len(crops), batch)])
    return out.reshape(B, g * g, -1).numpy()


def slide(x, model, size, stride):
    """Patch tokens by sliding-window inference: every window of `size` px at `stride` (the
    last window flush with the edge), each patch's final-norm token averaged over the windows
    that cover it."""
    B, C, H, W = x.shape; P = model.patch; g = H // P; wg = size // P
    starts = list(range(0, H - size + 1, stride))
    if starts[-1] != H - size: starts.append(H - size)
    total = torch.zeros(B, g, g, 0); count = torch.zeros(1, g, g, 1)
    for top in starts:
        for left in starts:
            _, normed = model(x[:, :, top:top + size, left:left + size])
            t = normed[:, 1:].reshape(B, wg, wg, -1)
            if total.shape[-1] == 0: total = torch.zeros(B, g, g, t.shape[-1])
            total[:, top // P:top // P + wg, left // P:left // P + wg] += t
            count[:, top // P:top // P + wg, left // P:left // P + wg] += 1
    return (total / count).reshape(B, g * g, -1).numpy()


def main():
    checkpoint = sys.argv[1]
    train_count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    train_images, train_labels = idx(f"{ROOT}/train-images-idx3-ubyte.gz"), idx(f"{ROOT}/train-labels-idx1-ubyte.gz")
    test_images, test_labels = idx(f"{ROOT}/t10k-images-idx3-ubyte.gz"), idx(f"{ROOT}/t10k-labels-idx1-ubyte.gz")
    scenes_train, labels_train = scenes(train_images, train_labels, train_count)
    scenes_test, labels_test = scenes(test_images, test_labels, 100)
    x_train, x_test = normalise(scenes_train), normalise(scenes_test)
    model = ViT(checkpoint)
    patch = model.patch
    grid = 56 // patch
    results = {}

    def record(name, features):
        results[name] = retrieval(features(x_train), labels_train, features(x_test), labels_test, grid)
        print(f"{name:42s} mIoU {results[name][0]:6.2f}  pixel accuracy {results[name][1]:6.2f}", flush=True)

    truth = {id(x_train): soft_labels(labels_train, grid), id(x_test): soft_labels(labels_test, grid)}
    record("oracle: true soft labels", lambda x: truth[id(x)])
    record("oracle: foreground fraction only",
           lambda x: np.concatenate([truth[id(x)][..., :1], truth[id(x)][..., 1:].sum(-1, keepdims=True)], -1))
    record("final-norm patch tokens (ssl-run eval)", lambda x: model(x)[1][:, 1:].numpy())
    for block in range(model.depth):
        record(f"block {block + 1} patch tokens", lambda x: model(x)[0][block][:, 1:].numpy())
    for size, stride in ((28, 7), (28, 14), (21, 7), (35, 7)):
        record(f"sliding windows of {size} at stride {stride}", lambda x: slide(x, model, size, stride))
    for size in (14, 21, 28):
        record(f"class token of the {size}-pixel window", lambda x: windows(x, patch, size, lambda c: model(c)[1][:, 0]))
    record("pixels: each patch", lambda x: patch_pixels(x, patch))
    for size in (14, 21, 28):
        record(f"pixels: the {size}-pixel window", lambda x: windows(x, patch, size, lambda c: c.reshape(len(c), -1)))


if __name__ == "__main__":
    main()
