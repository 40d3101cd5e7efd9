"""Write the HDF5 fixtures for the Swift <-> PyTorch numerical cross-check (spec §6).

Usage (from the repository root):

    pip install -r tools/reference/requirements.txt
    python3 tools/reference/make_fixtures.py                 # all fixture files
    python3 tools/reference/make_fixtures.py --only vit_p4   # a subset
    python3 tools/reference/make_fixtures.py --out /tmp/fx   # another output folder

Everything is fp32 on CPU with one thread; every writer re-seeds torch/numpy itself, so each file
is reproducible on its own. To add a section (SSL heads/losses, augmentations, ...), write a
function `write_xxx(path: Path) -> None` and register it in `FIXTURES` below.

Conventions for all files: PyTorch layouts, C order, float32 unless noted; datasets with more
than COMPRESS_MIN elements use the shuffle + gzip filters (both built into libhdf5); strings are
fixed-length ASCII (`S` dtype, NUL-padded, size = longest + 1).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import h5py
import numpy as np
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_vit import (  # noqa: E402
    LN_EPS,
    ReferenceViT,
    check_against_timm,
    dino_scale_factors,
    expected_keys,
    fixture_init_,
    interpolate_pos_table,
    manual_bicubic,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures"
COMPRESS_MIN = 1024


# ----------------------------------------------------------------------------------------------
# HDF5 helpers
# ----------------------------------------------------------------------------------------------

def ascii_str(s: str) -> np.ndarray:
    """Scalar fixed-length ASCII string; STRSIZE = len + 1 so it is always NUL-terminated."""
    b = s.encode("ascii")
    return np.array(b, dtype=f"S{len(b) + 1}")


def put(group: h5py.Group, name: str, value, dtype=np.float32) -> h5py.Dataset:
    """Write one dataset (C order). Tensors are detached and converted to `dtype`."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.array(value, dtype=dtype, order="C")  # keeps 0-d scalars 0-d
    kwargs = {}
    if arr.size > COMPRESS_MIN:
        # one chunk per dataset: best gzip ratio and the smallest chunk index
        kwargs = dict(compression="gzip", compression_opts=9, shuffle=True, chunks=arr.shape)
    return group.create_dataset(name, data=arr, **kwargs)


def put_strings(group: h5py.Group, name: str, strings: Sequence[str]) -> h5py.Dataset:
    enc = [s.encode("ascii") for s in strings]
    # fixed-length ASCII, STRSIZE = longest + 1 so every element is NUL-terminated
    arr = np.array(enc, dtype=f"S{max(len(b) for b in enc) + 1}")
    return group.create_dataset(name, data=arr)


def put_state(group: h5py.Group, tensors: Dict[str, torch.Tensor]) -> None:
    for key, t in tensors.items():
        put(group, key, t)


def put_state_dict(group: h5py.Group, tensors: Dict[str, torch.Tensor]) -> None:
    """Like put_state, but integer tensors (BatchNorm num_batches_tracked) are stored as int64."""
    for key, t in tensors.items():
        put(group, key, t, dtype=np.int64 if not t.is_floating_point() else np.float32)


def h5_create(path: Path) -> h5py.File:
    """New file in the HDF5 1.10 object format (compact groups, single-chunk index): smaller
    than the 1.8 default for files with hundreds of small datasets; readable by HDF5 >= 1.10
    (checked with the system h5dump 1.10.8)."""
    return h5py.File(path, "w", libver=("v110", "v110"))


def setup_torch(seed: int = 0) -> None:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(seed)
    np.random.seed(seed)


# ----------------------------------------------------------------------------------------------
# ViT backbone + optimiser fixtures (spec §1, §2.5, §6.3 items 1-3, 11-13)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VitFixtureConfig:
    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    img_size: int
    sizes: tuple          # (large, small) input sizes
    batch: int = 2
    clip_norm: float = 0.05
    lr: float = 1e-3
    weight_decay: float = 0.04
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8
    ema_momentum: float = 0.996
    write_optimizer: bool = True   # the `optimizer/` group (clipping, AdamW, EMA)


# vit_p16 is kept small (file-size budget ~3 MB): batch 1 and no `optimizer/` group; the
# optimiser checks live in vit_p4 only (they do not depend on the patch size).
VIT_P16 = VitFixtureConfig(embed_dim=48, depth=2, num_heads=3, patch_size=16, img_size=224,
                           sizes=(224, 96), batch=1, write_optimizer=False)
VIT_P4 = VitFixtureConfig(embed_dim=48, depth=2, num_heads=3, patch_size=4, img_size=32,
                          sizes=(32, 16))


def dino_clip_(grads: Dict[str, torch.Tensor], clip: float) -> Dict[str, dict]:
    """DINO per-parameter clipping, in place, fp32 tensor arithmetic (spec §2.5 step 4)."""
    info = {}
    for key, g in grads.items():
        n = g.norm(2)
        coef = clip / (n + 1e-6)
        clipped = bool(coef < 1)
        if clipped:
            g.mul_(coef)
        info[key] = dict(norm=float(n), coef=float(coef), clipped=clipped)
    return info


def dino_param_groups(named: Dict[str, torch.nn.Parameter]):
    decay, no_decay = [], []
    for name, p in named.items():
        if name.endswith(".bias") or p.ndim == 1:
            no_decay.append(name)
        else:
            decay.append(name)
    return decay, no_decay


def adamw_fp64(p0, g, lr, wd, b1, b2, eps, steps):
    """Independent float64 AdamW (decoupled decay before the Adam update), same grad each step."""
    p, g = p0.double().clone(), g.double()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    for t in range(1, steps + 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        denom = v.sqrt() / math.sqrt(1 - b2 ** t) + eps
        p = p - lr * mhat / denom
    return p, m, v


def run_forward(model: ReferenceViT, x: torch.Tensor, w: torch.Tensor):
    """Forward with recording, loss = sum(norm * w), backward. Returns (record, loss, grads, xgrad)."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    rec: Dict[str, torch.Tensor] = {}
    model(x, rec)
    loss = (rec["norm"] * w).sum()
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    return rec, loss.detach(), grads, x.grad.detach().clone()


def fp64_grad_check(model: ReferenceViT, x, w, loss32, grads32, xgrad32) -> float:
    """Re-run in float64 and return the worst per-tensor relative error of the fp32 results
    (information for choosing Swift tolerances; spec §6.4 asks rel 1e-4 for gradients)."""
    m64 = ReferenceViT(model.img_size, model.patch_size, model.embed_dim, model.depth,
                       model.num_heads).double()
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x64 = x.double().clone().requires_grad_(True)
    rec: Dict[str, torch.Tensor] = {}
    m64(x64, rec)
    loss = (rec["norm"] * w.double()).sum()
    loss.backward()
    worst = abs(loss.item() - float(loss32)) / abs(loss.item())
    for k, p in m64.named_parameters():
        ref = p.grad
        worst = max(worst, ((grads32[k].double() - ref).norm() / ref.norm()).item())
    worst = max(worst, ((xgrad32.double() - x64.grad).norm() / x64.grad.norm()).item())
    return worst


def write_vit_fixture(path: Path, cfg: VitFixtureConfig) -> None:
    setup_torch(0)
    model = ReferenceViT(img_size=cfg.img_size, patch_size=cfg.patch_size,
                         embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                         has_cls=True, final_norm=True, eps=LN_EPS).eval()
    fixture_init_(model)
    named = dict(model.named_parameters())
    keys = list(named.keys())
    assert keys == expected_keys(cfg.depth), keys
    params0 = {k: p.detach().clone() for k, p in named.items()}

    # Sanity check against timm with its own RNG stream (does not disturb the fixture stream).
    diff = check_against_timm(model, batch=cfg.batch, atol=1e-5,
                              generator=torch.Generator().manual_seed(1234))
    print(f"  timm CLS check: max abs diff {diff:.2e}")

    n0 = (cfg.img_size // cfg.patch_size) ** 2
    with h5_create(path) as f:
        f.attrs["embed_dim"] = np.int64(cfg.embed_dim)
        f.attrs["depth"] = np.int64(cfg.depth)
        f.attrs["num_heads"] = np.int64(cfg.num_heads)
        f.attrs["patch_size"] = np.int64(cfg.patch_size)
        f.attrs["img_size"] = np.int64(cfg.img_size)
        f.attrs["layer_norm_eps"] = np.float64(LN_EPS)
        f.attrs["torch_version"] = ascii_str(torch.__version__)
        f.attrs["batch"] = np.int64(cfg.batch)
        f.attrs["input_sizes"] = np.asarray(cfg.sizes, dtype=np.int64)
        f.attrs["num_patches_ref"] = np.int64(n0)

        put_state(f.create_group("params"), params0)

        large_grads = None
        for size in cfg.sizes:
            x = torch.randn(cfg.batch, 3, size, size)
            grid = size // cfg.patch_size
            n = grid * grid
            w = torch.randn(cfg.batch, n + 1, cfg.embed_dim)
            rec, loss, grads, xgrad = run_forward(model, x, w)
            if size == cfg.sizes[0]:
                large_grads = grads
            d = cfg.embed_dim
            b = cfg.batch
            # shape / semantics checks
            assert rec["patch_embed"].shape == (b, n, d)
            assert rec["pos_embed"].shape == (1, n + 1, d)
            assert rec["tokens"].shape == (b, n + 1, d)
            if grid * grid == n0:
                assert torch.equal(rec["pos_embed"], params0["pos_embed"])
            else:
                assert torch.equal(rec["pos_embed"][:, :1], params0["pos_embed"][:, :1])
            for i in range(cfg.depth):
                assert rec[f"blocks.{i}/attn_probs"].shape == (b, cfg.num_heads, n + 1, n + 1)
                assert rec[f"blocks.{i}/fc1"].shape == (b, n + 1, 4 * d)
                assert rec[f"blocks.{i}/qkv"].shape == (b, n + 1, 3 * d)
            assert torch.equal(rec["cls"], rec["norm"][:, 0])
            rel = fp64_grad_check(model, x, w, loss, grads, xgrad)
            print(f"  forward_{size}: N={n}, loss={float(loss):.6f}, "
                  f"fp32 vs fp64 worst rel err (loss/grads) {rel:.2e}")
            assert rel < 1e-4

            g = f.create_group(f"forward_{size}")
            g.attrs["image_size"] = np.int64(size)
            g.attrs["grid"] = np.int64(grid)
            g.attrs["num_patches"] = np.int64(n)
            g.attrs["interpolated"] = np.int64(0 if grid * grid == n0 else 1)
            g.attrs["scale_factor"] = np.asarray(dino_scale_factors(grid, grid, n0), np.float64)
            put(g, "input", x)
            for name in ("patch_embed", "pos_embed", "tokens"):
                put(g, name, rec[name])
            for i in range(cfg.depth):
                bg = g.create_group(f"blocks.{i}")
                for name in ("norm1", "qkv", "attn_probs", "attn_out", "residual1", "norm2",
                             "fc1", "gelu", "fc2", "output"):
                    put(bg, name, rec[f"blocks.{i}/{name}"])
            put(g, "norm", rec["norm"])
            put(g, "cls", rec["cls"])
            put(g, "loss_weights", w)
            put(g, "loss", loss.reshape(()))
            gg = g.create_group("grads")
            put_state(gg, grads)
            put(gg, "input_grad", xgrad)

        # ---------------- optimiser: clipping, AdamW (DINO groups), EMA ----------------
        if not cfg.write_optimizer:
            return
        og = f.create_group("optimizer")
        og.attrs["clip_norm"] = np.float64(cfg.clip_norm)
        og.attrs["lr"] = np.float64(cfg.lr)
        og.attrs["weight_decay"] = np.float64(cfg.weight_decay)
        og.attrs["beta1"] = np.float64(cfg.beta1)
        og.attrs["beta2"] = np.float64(cfg.beta2)
        og.attrs["eps"] = np.float64(cfg.adam_eps)
        og.attrs["ema_momentum"] = np.float64(cfg.ema_momentum)
        og.attrs["grads_from"] = ascii_str(f"forward_{cfg.sizes[0]}/grads")

        clipped = {k: v.clone() for k, v in large_grads.items()}
        info = dino_clip_(clipped, cfg.clip_norm)
        cg = og.create_group("clipped")
        for k, v in clipped.items():
            ds = put(cg, k, v)
            ds.attrs["grad_norm"] = np.float64(info[k]["norm"])
            ds.attrs["was_clipped"] = np.int64(info[k]["clipped"])
        n_clipped = sum(i["clipped"] for i in info.values())
        print(f"  clipping at {cfg.clip_norm}: {n_clipped}/{len(info)} tensors clipped")

        decay, no_decay = dino_param_groups(named)
        assert "cls_token" in decay and "pos_embed" in decay
        put_strings(og, "no_decay_keys", no_decay)
        opt = torch.optim.AdamW(
            [
                {"params": [named[k] for k in decay], "weight_decay": cfg.weight_decay},
                {"params": [named[k] for k in no_decay], "weight_decay": 0.0},
            ],
            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps,
            foreach=False, fused=False,
        )
        snapshots: List[Dict[str, torch.Tensor]] = []
        for _ in range(2):
            for k, p in named.items():
                p.grad = large_grads[k].clone()  # unclipped grads, same at both steps
            opt.step()
            snapshots.append({k: p.detach().clone() for k, p in named.items()})
        put_state(og.create_group("step1"), snapshots[0])
        put_state(og.create_group("step2"), snapshots[1])
        put_state(og.create_group("exp_avg"), {k: opt.state[named[k]]["exp_avg"] for k in keys})
        put_state(og.create_group("exp_avg_sq"),
                  {k: opt.state[named[k]]["exp_avg_sq"] for k in keys})

        # cross-check torch's AdamW against an independent float64 implementation
        # (params: max abs diff; moments: per-tensor relative 2-norm error)
        worst_p, worst_m = 0.0, 0.0
        for k in keys:
            wd = cfg.weight_decay if k in decay else 0.0
            for steps, snap in ((1, snapshots[0]), (2, snapshots[1])):
                p64, m64, v64 = adamw_fp64(params0[k], large_grads[k], cfg.lr, wd,
                                           cfg.beta1, cfg.beta2, cfg.adam_eps, steps)
                worst_p = max(worst_p, (snap[k].double() - p64).abs().max().item())
            for name, ref in (("exp_avg", m64), ("exp_avg_sq", v64)):
                got = opt.state[named[k]][name].double()
                worst_m = max(worst_m, ((got - ref).norm() / ref.norm()).item())
        print(f"  AdamW torch fp32 vs fp64 formula: params max abs diff {worst_p:.2e}, "
              f"moments max rel err {worst_m:.2e}")
        assert worst_p < 3e-7 and worst_m < 1e-6  # ~1-2 fp32 ulp at |p| ~ 1

        # EMA exactly as DINO: param_k.mul_(m).add_((1 - m) * param_q)
        m = cfg.ema_momentum
        ema = {}
        for k in keys:
            t = params0[k].clone()
            t.mul_(m).add_((1 - m) * snapshots[0][k].detach())
            ema[k] = t
        put_state(og.create_group("ema"), ema)


def write_vit_p16(path: Path) -> None:
    write_vit_fixture(path, VIT_P16)


def write_vit_p4(path: Path) -> None:
    write_vit_fixture(path, VIT_P4)


# ----------------------------------------------------------------------------------------------
# Schedules (spec §2.3, §2.4), float64
# ----------------------------------------------------------------------------------------------

def cosine_scheduler(base: float, final: float, epochs: int, niter_per_ep: int,
                     warmup_epochs: int = 0, start_warmup_value: float = 0.0) -> np.ndarray:
    """Per-iteration DINO cosine schedule (spec §2.4): linear warm-up including the endpoint
    `base`, then final + 0.5 (base - final)(1 + cos(pi j / (E I - W I)))."""
    warm_iters = warmup_epochs * niter_per_ep
    total = epochs * niter_per_ep
    warm = (np.linspace(start_warmup_value, base, warm_iters, dtype=np.float64)
            if warm_iters > 0 else np.zeros(0, np.float64))
    j = np.arange(total - warm_iters, dtype=np.float64)
    cos = final + 0.5 * (base - final) * (1.0 + np.cos(np.pi * j / (total - warm_iters)))
    out = np.concatenate([warm, cos])
    assert out.shape == (total,)
    return out


def teacher_temp_schedule(warm: float, final: float, warm_epochs: int, epochs: int) -> np.ndarray:
    return np.concatenate([np.linspace(warm, final, warm_epochs, dtype=np.float64),
                           np.full(epochs - warm_epochs, final, dtype=np.float64)])


def write_schedules(path: Path) -> None:
    specs = {
        "lr": dict(base=1.0, final=0.0, epochs=3, niter_per_ep=4, warmup_epochs=1,
                   start_warmup_value=0.0),
        "momentum": dict(base=0.996, final=1.0, epochs=3, niter_per_ep=4, warmup_epochs=0,
                         start_warmup_value=0.0),
        "lr_big": dict(base=2e-3, final=1e-6, epochs=7, niter_per_ep=13, warmup_epochs=2,
                       start_warmup_value=0.0),
        "wd_big": dict(base=0.04, final=0.4, epochs=7, niter_per_ep=13, warmup_epochs=0,
                       start_warmup_value=0.0),
    }
    arrays = {name: cosine_scheduler(**kw) for name, kw in specs.items()}

    golden_lr = [0, 0.333333, 0.666667, 1, 1, 0.96194, 0.853553, 0.691342, 0.5, 0.308658,
                 0.146447, 0.03806]
    golden_mom = [0.996, 0.996068, 0.996268, 0.996586, 0.997, 0.997482, 0.998, 0.998518,
                  0.999, 0.999414, 0.999732, 0.999932]
    assert np.allclose(arrays["lr"], golden_lr, rtol=0, atol=6e-7), arrays["lr"]
    assert np.allclose(arrays["momentum"], golden_mom, rtol=0, atol=6e-7), arrays["momentum"]
    lb = arrays["lr_big"]
    assert lb.shape == (91,) and lb[0] == 0.0 and lb[25] == 2e-3 and lb[26] == 2e-3
    # last value slightly above `final`: final + (base - final)/2 (1 + cos(pi (n-1)/n))
    assert lb[-1] > 1e-6 and abs(lb[-1] - (1e-6 + 0.5 * (2e-3 - 1e-6) * (1 + math.cos(math.pi * 64 / 65)))) < 1e-15
    assert abs(arrays["wd_big"][0] - 0.04) < 1e-15 and 0.3998 < arrays["wd_big"][-1] < 0.4

    tt = teacher_temp_schedule(0.04, 0.07, 30, 100)
    assert tt.shape == (100,)
    for e, v in ((0, 0.04), (1, 0.041034), (2, 0.042069), (29, 0.07), (30, 0.07)):
        assert abs(tt[e] - v) < 6e-7, (e, tt[e])

    with h5_create(path) as f:
        f.attrs["torch_version"] = ascii_str(torch.__version__)
        f.attrs["numpy_version"] = ascii_str(np.__version__)
        for name, arr in arrays.items():
            ds = put(f, name, arr, dtype=np.float64)
            for k, v in specs[name].items():
                ds.attrs[k] = np.float64(v) if isinstance(v, float) else np.int64(v)
        ds = put(f, "teacher_temp", tt, dtype=np.float64)
        ds.attrs["warmup_teacher_temp"] = np.float64(0.04)
        ds.attrs["teacher_temp"] = np.float64(0.07)
        ds.attrs["warmup_teacher_temp_epochs"] = np.int64(30)
        ds.attrs["epochs"] = np.int64(100)
    print("  schedule goldens OK")


# ----------------------------------------------------------------------------------------------
# Position-embedding interpolation (spec §1.2)
# ----------------------------------------------------------------------------------------------

def write_pos_embed_interp(path: Path) -> None:
    setup_torch(0)
    dim, side = 48, 14
    n0 = side * side
    table = torch.randn(1, 1 + n0, dim)
    grids = {"grid6": (6, 6), "grid7x5": (7, 5), "grid20": (20, 20)}

    src6 = np.array([(o + 0.5) * side / 6.1 - 0.5 for o in range(6)], dtype=np.float64)
    golden = [0.647541, 2.942623, 5.237705, 7.532787, 9.827869, 12.122951]
    assert np.allclose(src6, golden, rtol=0, atol=6e-7), src6

    with h5_create(path) as f:
        f.attrs["torch_version"] = ascii_str(torch.__version__)
        f.attrs["num_patches_ref"] = np.int64(n0)
        f.attrs["has_cls"] = np.int64(1)
        put(f, "table", table)
        for name, (gh, gw) in grids.items():
            out = interpolate_pos_table(table, gh, gw, has_cls=True)
            assert out.shape == (1, 1 + gh * gw, dim)
            assert torch.equal(out[:, :1], table[:, :1])
            sh, sw = dino_scale_factors(gh, gw, n0)
            man = manual_bicubic(table[0, 1:].reshape(side, side, dim).permute(2, 0, 1),
                                 gh, gw, sh, sw).permute(1, 2, 0).reshape(1, gh * gw, dim)
            diff = (out[:, 1:].double() - man).abs().max().item()
            assert diff < 1e-5, (name, diff)
            print(f"  {name}: F.interpolate vs independent fp64 bicubic max abs diff {diff:.2e}")
            ds = put(f, name, out)
            ds.attrs["grid_h"] = np.int64(gh)
            ds.attrs["grid_w"] = np.int64(gw)
            ds.attrs["scale_factor"] = np.asarray((sh, sw), dtype=np.float64)
        put(f, "src_coords_6", src6, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Registry and entry point. Later sections (DINO head/loss, SelfPatch, MoCo v3, augmentations)
# add their writers here.
# ----------------------------------------------------------------------------------------------

FIXTURES: Dict[str, Callable[[Path], None]] = {
    "vit_p16": write_vit_p16,
    "vit_p4": write_vit_p4,
    "schedules": write_schedules,
    "pos_embed_interp": write_pos_embed_interp,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument("--only", nargs="*", choices=sorted(FIXTURES), help="fixtures to write")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(FIXTURES):
        path = args.out / f"{name}.h5"
        print(f"writing {path}")
        FIXTURES[name](path)
        print(f"  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
