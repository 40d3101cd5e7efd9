"""Read the fixture files back (as a Swift test would) and check layout and internal consistency.

    python3 tools/reference/check_fixtures.py [--dir Tests/Fixtures]

Checks: every expected dataset exists with the expected shape/dtype; re-running the reference
model from the stored params + input reproduces the stored activations, loss and gradients;
clipped grads, AdamW steps/moments and EMA follow their formulas (recomputed in float64 from the
stored tensors); schedules match an independent recomputation.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import DEFAULT_OUT, VIT_P4, VIT_P16, cosine_scheduler  # noqa: E402
from reference_vit import ReferenceViT, expected_keys, interpolate_pos_table  # noqa: E402

BLOCK_NAMES = ("norm1", "qkv", "attn_probs", "attn_out", "residual1", "norm2", "fc1", "gelu",
               "fc2", "output")


def t(ds) -> torch.Tensor:
    return torch.from_numpy(np.array(ds))


def check_vit(path: Path, cfg) -> None:
    f = h5py.File(path, "r")
    d, depth, h, bsz = cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.batch
    for k in ("embed_dim", "depth", "num_heads", "patch_size", "img_size"):
        assert int(f.attrs[k]) == getattr(cfg, k), k
    assert float(f.attrs["layer_norm_eps"]) == 1e-6
    assert int(f.attrs["batch"]) == bsz
    keys = expected_keys(depth)
    assert sorted(f["params"].keys()) == sorted(keys)
    model = ReferenceViT(cfg.img_size, cfg.patch_size, d, depth, h).eval()
    model.load_state_dict({k: t(f["params"][k]) for k in keys}, strict=True)
    params = {k: t(f["params"][k]).double() for k in keys}

    for size in cfg.sizes:
        g = f[f"forward_{size}"]
        n = (size // cfg.patch_size) ** 2
        shapes = {"input": (bsz, 3, size, size), "patch_embed": (bsz, n, d),
                  "pos_embed": (1, n + 1, d), "tokens": (bsz, n + 1, d),
                  "norm": (bsz, n + 1, d), "cls": (bsz, d), "loss_weights": (bsz, n + 1, d),
                  "loss": ()}
        for i in range(depth):
            for name in BLOCK_NAMES:
                shapes[f"blocks.{i}/{name}"] = {
                    "qkv": (bsz, n + 1, 3 * d), "attn_probs": (bsz, h, n + 1, n + 1),
                    "fc1": (bsz, n + 1, 4 * d), "gelu": (bsz, n + 1, 4 * d),
                }.get(name, (bsz, n + 1, d))
        for name, shape in shapes.items():
            assert g[name].shape == shape and g[name].dtype == np.float32, (size, name)
        assert sorted(g["grads"].keys()) == sorted(keys + ["input_grad"])

        x = t(g["input"]).requires_grad_(True)
        rec = {}
        model.zero_grad(set_to_none=True)
        model(x, rec)
        loss = (rec["norm"] * t(g["loss_weights"])).sum()
        loss.backward()
        worst = 0.0
        for name in shapes:
            if name in ("input", "loss_weights"):
                continue
            ref = t(g[name])
            got = loss.detach() if name == "loss" else rec[name].detach()
            worst = max(worst, (got - ref).abs().max().item())
        for k, p in model.named_parameters():
            worst = max(worst, (p.grad - t(g["grads"][k])).abs().max().item())
        worst = max(worst, (x.grad - t(g["grads"]["input_grad"])).abs().max().item())
        assert worst == 0.0, f"{path.name} forward_{size}: re-run differs by {worst}"
        # independent bits: the table really is DINO's interpolation of params/pos_embed
        gh = size // cfg.patch_size
        assert torch.equal(t(g["pos_embed"]), interpolate_pos_table(t(f["params"]["pos_embed"]), gh, gh))
        nrm = t(g["norm"]).double()
        assert abs(float((nrm * t(g["loss_weights"]).double()).sum()) - float(t(g["loss"]))) \
            < 1e-5 * abs(float(t(g["loss"])))
        assert torch.equal(t(g["cls"]), t(g["norm"])[:, 0])

    if not cfg.write_optimizer:
        assert "optimizer" not in f, f"{path.name} must not contain optimizer/"
        assert sorted(f.keys()) == sorted(["params"] + [f"forward_{s}" for s in cfg.sizes])
        print(f"{path.name}: OK (B={bsz}, re-run bit-exact; no optimizer/ group)")
        return
    assert sorted(f.keys()) == sorted(["params", "optimizer"] + [f"forward_{s}" for s in cfg.sizes])
    o = f["optimizer"]
    grads = {k: t(f[f"forward_{cfg.sizes[0]}/grads"][k]).double() for k in keys}
    clip = float(o.attrs["clip_norm"])
    for k in keys:
        gk = grads[k]
        coef = clip / (gk.norm().item() + 1e-6)
        ref = gk * coef if coef < 1 else gk
        assert (t(o["clipped"][k]).double() - ref).abs().max().item() < 1e-7 * max(1, ref.abs().max().item()) + 1e-9
    no_decay = [s.decode("ascii") for s in o["no_decay_keys"][()]]
    assert no_decay == [k for k in keys if k.endswith(".bias") or params[k].ndim == 1]
    lr, wd0 = float(o.attrs["lr"]), float(o.attrs["weight_decay"])
    b1, b2, eps = float(o.attrs["beta1"]), float(o.attrs["beta2"]), float(o.attrs["eps"])
    worst_p = worst_m = 0.0
    for k in keys:
        wd = 0.0 if k in no_decay else wd0
        p, m, v = params[k].clone(), torch.zeros_like(params[k]), torch.zeros_like(params[k])
        for step in (1, 2):
            p = p * (1 - lr * wd)
            m = b1 * m + (1 - b1) * grads[k]
            v = b2 * v + (1 - b2) * grads[k] ** 2
            p = p - lr * (m / (1 - b1 ** step)) / (v.sqrt() / math.sqrt(1 - b2 ** step) + eps)
            worst_p = max(worst_p, (t(o[f"step{step}"][k]).double() - p).abs().max().item())
        worst_m = max(worst_m, ((t(o["exp_avg"][k]).double() - m).norm() / m.norm()).item(),
                      ((t(o["exp_avg_sq"][k]).double() - v).norm() / v.norm()).item())
    assert worst_p < 3e-7 and worst_m < 1e-6, (worst_p, worst_m)
    mom = float(o.attrs["ema_momentum"])
    worst_e = max((t(o["ema"][k]).double() - (mom * params[k] + (1 - mom) * t(o["step1"][k]).double()))
                  .abs().max().item() for k in keys)
    assert worst_e < 2e-7, worst_e
    print(f"{path.name}: OK (B={bsz}, re-run bit-exact; AdamW vs fp64 {worst_p:.1e}; EMA vs fp64 {worst_e:.1e})")


def check_schedules(path: Path) -> None:
    f = h5py.File(path, "r")
    for name in ("lr", "momentum", "lr_big", "wd_big"):
        a = f[name].attrs
        ref = cosine_scheduler(float(a["base"]), float(a["final"]), int(a["epochs"]),
                               int(a["niter_per_ep"]), int(a["warmup_epochs"]),
                               float(a["start_warmup_value"]))
        assert f[name].dtype == np.float64 and np.array_equal(f[name][()], ref), name
    tt = f["teacher_temp"][()]
    assert tt.shape == (100,) and tt[0] == 0.04 and np.all(tt[29:] == 0.07)
    print(f"{path.name}: OK")


def check_pos_embed(path: Path) -> None:
    f = h5py.File(path, "r")
    table = t(f["table"])
    for name, (gh, gw) in {"grid6": (6, 6), "grid7x5": (7, 5), "grid20": (20, 20)}.items():
        assert f[name].shape == (1, 1 + gh * gw, 48)
        assert torch.equal(t(f[name]), interpolate_pos_table(table, gh, gw))
    assert np.allclose(f["src_coords_6"][()],
                       [0.647541, 2.942623, 5.237705, 7.532787, 9.827869, 12.122951], atol=6e-7)
    print(f"{path.name}: OK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    check_vit(args.dir / "vit_p16.h5", VIT_P16)
    check_vit(args.dir / "vit_p4.h5", VIT_P4)
    check_schedules(args.dir / "schedules.h5")
    check_pos_embed(args.dir / "pos_embed_interp.h5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
