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
than COMPRESS_MIN elements are stored as one chunk with the shuffle + gzip filters (both built
into libhdf5); files use the HDF5 1.10 object format (readable by HDF5 >= 1.10); strings are
fixed-length ASCII (`S` dtype, NUL-padded, size = longest + 1); attributes are scalars.
Budget: every file must stay under 3 MB (check_fixtures.py reports the sizes).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import h5py
import numpy as np
import torch
import torch.nn as nn

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
from reference_ssl import (  # noqa: E402
    DINOHead,
    DINOModel,
    MoCoV3,
    MoCoViT,
    SelfPatchHead,
    SelfPatchModel,
    cancel_last_layer_grads_,
    check_golden_neighbors,
    check_sincos_golden,
    dino_clip_params_,
    dino_loss,
    dino_param_group_names,
    ema_update_,
    multicrop_forward,
    neighbor_table,
    INPUT_GRID,
    WEIGHT_GRID,
    round_to_grid_,
    selfpatch_forward,
    selfpatch_loss,
    sincos_pos_table,
    ssl_fixture_init_,
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
# SSL plugin fixtures: DINO (spec §2, §6.2 F1, §6.3 items 4-6, 11-14), SelfPatch (§3, §6.3
# items 7-11), MoCo v3 (§4, §6.2 F3, §6.3 items 15-18). Inputs are N(0,1) rounded to multiples
# of INPUT_GRID (1/8) and initial weights are rounded to multiples of WEIGHT_GRID (2^-10), both
# stored as float32: low-entropy values compress well, which keeps each file under 3 MB.
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MicroConfig:
    """F1 micro setting shared by dino_micro and selfpatch_micro."""
    embed_dim: int = 48
    depth: int = 2
    num_heads: int = 3
    patch_size: int = 16
    img_size: int = 224
    batch: int = 2
    global_size: int = 224
    local_size: int = 96
    n_global: int = 2
    n_local: int = 2
    out_dim: int = 128             # K
    patch_out_dim: int = 64        # K_p (SelfPatch)
    hidden_dim: int = 64
    bottleneck_dim: int = 32
    nlayers: int = 3
    k_num: int = 4                 # SelfPatch positives per patch
    patch_loss_weight: float = 0.1  # SelfPatch lambda
    teacher_temp: float = 0.04
    student_temp: float = 0.1
    center_momentum: float = 0.9
    teacher_noise_std: float = 0.01
    center_init_std: float = 0.1
    # DINO 3-step mini-run (spec §6.3 item 14)
    mini_steps: int = 3
    mini_epochs: int = 2
    mini_iters_per_epoch: int = 2
    lr_base: float = 1e-3
    lr_final: float = 1e-5
    lr_warmup_epochs: int = 1
    wd_base: float = 0.04
    wd_final: float = 0.4
    momentum_base: float = 0.996
    momentum_final: float = 1.0
    clip_grad: float = 3.0
    freeze_last_layer: int = 1
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8

    @property
    def n_crops(self) -> int:
        return self.n_global + self.n_local

    @property
    def crop_sizes(self) -> List[int]:
        return [self.global_size] * self.n_global + [self.local_size] * self.n_local


MICRO = MicroConfig()


@dataclass(frozen=True)
class MocoMicroConfig:
    embed_dim: int = 48
    depth: int = 2
    num_heads: int = 4
    patch_size: int = 16
    img_size: int = 64             # 224 would need 9.6 MB of inputs alone (B 8, 2 views)
    batch: int = 8
    dim: int = 16
    mlp_dim: int = 32
    temperature: float = 0.2
    momentum: float = 0.99
    momentum_noise_std: float = 0.01
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    initial_num_batches_tracked: int = 7


MOCO_MICRO = MocoMicroConfig()


def clone_state(module: torch.nn.Module, prefix: str = "") -> Dict[str, torch.Tensor]:
    return {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}


def round_params_(module: torch.nn.Module, skip: Sequence[str] = ()) -> None:
    for name, p in module.named_parameters():
        if name not in skip:
            round_to_grid_(p.data, WEIGHT_GRID)


def noisy_copy(module: torch.nn.Module, std: float, skip=lambda name: False) -> torch.nn.Module:
    """Deep copy + N(0, std) on every parameter not skipped, rounded to WEIGHT_GRID; frozen."""
    other = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in other.named_parameters():
            if skip(name):
                continue
            p.add_(std * torch.randn(p.shape))
            round_to_grid_(p.data, WEIGHT_GRID)
    for p in other.parameters():
        p.requires_grad_(False)
    return other


def draw_inputs(shapes: Sequence[tuple], seed: int) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [round_to_grid_(torch.randn(*s, generator=gen), INPUT_GRID) for s in shapes]


def trainable_grads(module: torch.nn.Module, prefix: str = "") -> Dict[str, torch.Tensor]:
    out = {}
    for k, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, k
            out[prefix + k] = p.grad.detach().clone()
        else:
            assert p.grad is None, k
    return out


def grad_errors(grads32: Dict[str, torch.Tensor], grads64: Dict[str, torch.Tensor]):
    """(worst per-tensor relative error, names of mathematically-zero gradients). A gradient is
    mathematically zero when its fp64 norm is < 1e-12 (e.g. the key bias of class attention:
    softmax is shift invariant); for those the fp32 values are rounding noise, checked absolutely."""
    worst, zero = 0.0, []
    for k, g in grads32.items():
        ref = grads64[k].double()
        if ref.norm().item() < 1e-12:
            assert g.abs().max().item() < 1e-5, (k, g.abs().max().item())
            zero.append(k)
        else:
            worst = max(worst, rel_err(g, ref))
    return worst, zero


def put_grads(group: h5py.Group, grads: Dict[str, torch.Tensor], zero: Sequence[str]) -> None:
    for k, g in grads.items():
        ds = put(group, k, g)
        if k in zero:
            ds.attrs["mathematically_zero"] = np.int64(1)


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.double(), ref.double()
    return ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def put_attrs(obj, **attrs) -> None:
    """Scalar attributes only (the Swift reader reads one number or one string per attribute)."""
    for k, v in attrs.items():
        if isinstance(v, str):
            obj.attrs[k] = ascii_str(v)
        elif isinstance(v, (bool, int)):
            obj.attrs[k] = np.int64(v)
        else:
            obj.attrs[k] = np.float64(v)


# ------------------------------------------ DINO ----------------------------------------------

def build_dino_model(cfg: MicroConfig) -> DINOModel:
    backbone = ReferenceViT(img_size=cfg.img_size, patch_size=cfg.patch_size,
                            embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                            has_cls=True, final_norm=True, eps=LN_EPS)
    head = DINOHead(cfg.embed_dim, cfg.out_dim, cfg.hidden_dim, cfg.bottleneck_dim, cfg.nlayers,
                    use_bn=False, norm_last_layer=True)
    return DINOModel(backbone, head)


def dino_forward_loss(student, teacher, crops, center, cfg: MicroConfig, record=None):
    with torch.no_grad():
        t_out = multicrop_forward(teacher, crops[:cfg.n_global])       # (2B, K)
    s_out = multicrop_forward(student, crops, record)                   # (VB, K)
    loss, terms, new_center = dino_loss(s_out, t_out, center, cfg.n_crops, cfg.student_temp,
                                        cfg.teacher_temp, cfg.center_momentum, cfg.n_global)
    return t_out, s_out, loss, terms, new_center


def dino_mini_schedules(cfg: MicroConfig):
    e, i = cfg.mini_epochs, cfg.mini_iters_per_epoch
    lr = cosine_scheduler(cfg.lr_base, cfg.lr_final, e, i, cfg.lr_warmup_epochs)
    wd = cosine_scheduler(cfg.wd_base, cfg.wd_final, e, i)
    mom = cosine_scheduler(cfg.momentum_base, cfg.momentum_final, e, i)
    n = cfg.mini_steps
    return lr[:n], wd[:n], mom[:n]


def run_dino_mini(cfg: MicroConfig, student_state, teacher_state, center0, crops):
    """spec §2.5 order: schedules -> forward + loss (center update) -> backward -> per-param clip
    -> cancel last-layer grads in epoch < freeze_last_layer -> AdamW -> teacher EMA."""
    student = build_dino_model(cfg)
    student.load_state_dict(student_state)
    teacher = build_dino_model(cfg)
    teacher.load_state_dict(teacher_state)
    for p in teacher.parameters():
        p.requires_grad_(False)
    lr, wd, mom = dino_mini_schedules(cfg)
    decay, no_decay = dino_param_group_names(student)
    named = dict(student.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": [named[k] for k in decay]},
         {"params": [named[k] for k in no_decay], "weight_decay": 0.0}],
        lr=0.0, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps, foreach=False, fused=False)
    center = center0.clone()
    losses, centers, n_clipped = [], [], []
    for it in range(cfg.mini_steps):
        epoch = it // cfg.mini_iters_per_epoch
        for gi, group in enumerate(opt.param_groups):
            group["lr"] = float(lr[it])
            if gi == 0:
                group["weight_decay"] = float(wd[it])
        _, _, loss, _, center = dino_forward_loss(student, teacher, crops, center, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        n_clipped.append(len(dino_clip_params_(student, cfg.clip_grad)))
        cancel_last_layer_grads_(student, epoch, cfg.freeze_last_layer)
        if epoch < cfg.freeze_last_layer:
            assert named["head.last_layer.weight_v"].grad is None
        opt.step()
        ema_update_(teacher, student, float(mom[it]))
        losses.append(loss.detach().clone())
        centers.append(center[0].clone())
    state = opt.state[named["head.last_layer.weight_v"]]
    assert int(state["step"]) == cfg.mini_steps - cfg.freeze_last_layer * cfg.mini_iters_per_epoch
    assert torch.all(teacher.head.last_layer.weight_g == 1)
    return dict(lr=lr, wd=wd, momentum=mom, loss=torch.stack(losses), center=torch.stack(centers),
                student=clone_state(student), teacher=clone_state(teacher), n_clipped=n_clipped,
                no_decay=no_decay, decay=decay)


def write_dino_micro(path: Path) -> None:
    cfg = MICRO
    setup_torch(0)
    student = build_dino_model(cfg)
    ssl_fixture_init_(student)
    round_params_(student)
    teacher = noisy_copy(student, cfg.teacher_noise_std, skip=lambda n: n.endswith("weight_g"))
    center0 = cfg.center_init_std * torch.randn(1, cfg.out_dim)
    input_seed = 0
    crops = draw_inputs([(cfg.batch, 3, s, s) for s in cfg.crop_sizes], input_seed)
    student_state, teacher_state = clone_state(student), clone_state(teacher)
    assert list(student_state) == (["backbone." + k for k in expected_keys(cfg.depth)]
                                   + ["head." + k for k in ("mlp.0.weight", "mlp.0.bias",
                                      "mlp.2.weight", "mlp.2.bias", "mlp.4.weight", "mlp.4.bias",
                                      "last_layer.weight_g", "last_layer.weight_v")])

    rec: Dict[str, torch.Tensor] = {}
    student.zero_grad(set_to_none=True)
    t_out, s_out, loss, terms, center1 = dino_forward_loss(student, teacher, crops, center0, cfg, rec)
    loss.backward()
    grads = trainable_grads(student)
    v, b, k = cfg.n_crops, cfg.batch, cfg.out_dim
    assert t_out.shape == (cfg.n_global * b, k) and s_out.shape == (v * b, k)
    assert len(terms) == 2 * (v - 1)
    assert torch.allclose(rec["last_layer_weight"].norm(dim=1), torch.ones(k), atol=1e-6)
    assert s_out.abs().max() <= 1 + 1e-6 and t_out.abs().max() <= 1 + 1e-6
    frozen0 = [n for n, _ in student.named_parameters() if "last_layer" in n]
    assert sorted(grads) == sorted(n for n in student_state if not n.endswith("weight_g"))

    # fp64 re-run (information for the Swift tolerances; spec §6.4)
    s64, t64 = copy.deepcopy(student).double(), copy.deepcopy(teacher).double()
    s64.zero_grad(set_to_none=True)
    t64_out, s64_out, l64, terms64, c64 = dino_forward_loss(
        s64, t64, [c.double() for c in crops], center0.double(), cfg)
    l64.backward()
    worst_out = max((t_out.double() - t64_out).abs().max().item(),
                    (s_out.double() - s64_out).abs().max().item())
    worst_loss = max(abs(a.item() - r.item()) / abs(r.item()) for a, r in zip([loss] + terms, [l64] + terms64))
    worst_grad, zero_grads = grad_errors(grads, {n: p.grad for n, p in s64.named_parameters()
                                                 if p.requires_grad})
    print(f"  loss {loss.item():.6f}; fp32 vs fp64: logits max abs {worst_out:.1e}, "
          f"loss/terms max rel {worst_loss:.1e}, grads worst rel {worst_grad:.1e}")
    assert worst_out < 1e-5 and worst_loss < 1e-5 and worst_grad < 1e-4

    mini = run_dino_mini(cfg, student_state, teacher_state, center0, crops)
    assert torch.equal(mini["loss"][0], loss.detach())
    print(f"  mini-run losses {[round(float(x), 6) for x in mini['loss']]}, "
          f"clipped tensors per step {mini['n_clipped']}")

    with h5_create(path) as f:
        put_attrs(f, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                  patch_size=cfg.patch_size, img_size=cfg.img_size, batch=cfg.batch,
                  num_crops=v, num_global_crops=cfg.n_global, global_size=cfg.global_size,
                  local_size=cfg.local_size, out_dim=k, hidden_dim=cfg.hidden_dim,
                  bottleneck_dim=cfg.bottleneck_dim, nlayers=cfg.nlayers, use_bn=0,
                  norm_last_layer=1, teacher_temp=cfg.teacher_temp,
                  student_temp=cfg.student_temp, center_momentum=cfg.center_momentum,
                  teacher_noise_std=cfg.teacher_noise_std, center_init_std=cfg.center_init_std,
                  drop_path_rate=0.0, layer_norm_eps=LN_EPS, input_seed=input_seed,
                  input_grid=INPUT_GRID, weight_grid=WEIGHT_GRID, torch_version=torch.__version__)
        put_state(f.create_group("student"), student_state)
        put_state(f.create_group("teacher"), teacher_state)
        ig = f.create_group("inputs")
        for i, c in enumerate(crops):
            put(ig, f"crop{i}", c)
        put(f, "center_before", center0)
        put(f, "teacher_output", t_out)
        put(f, "student_output", s_out)
        hg = f.create_group("head")
        for name in ("mlp_out", "normalized", "last_layer_weight"):
            put(hg, name, rec[name])
        put(f, "loss", loss.reshape(()))
        put(f, "pair_losses", torch.stack([t.detach() for t in terms]))
        put(f, "center_after", center1)
        put_grads(f.create_group("grads"), grads, zero_grads)
        put_strings(f, "frozen_in_epoch0", frozen0)

        mg = f.create_group("mini")
        put_attrs(mg, steps=cfg.mini_steps, epochs=cfg.mini_epochs,
                  iters_per_epoch=cfg.mini_iters_per_epoch, lr_base=cfg.lr_base,
                  lr_final=cfg.lr_final, lr_warmup_epochs=cfg.lr_warmup_epochs,
                  wd_base=cfg.wd_base, wd_final=cfg.wd_final, momentum_base=cfg.momentum_base,
                  momentum_final=cfg.momentum_final, clip_grad=cfg.clip_grad,
                  freeze_last_layer=cfg.freeze_last_layer, beta1=cfg.beta1, beta2=cfg.beta2,
                  eps=cfg.adam_eps, teacher_temp=cfg.teacher_temp)
        put(mg, "lr", mini["lr"], dtype=np.float64)
        put(mg, "wd", mini["wd"], dtype=np.float64)
        put(mg, "momentum", mini["momentum"], dtype=np.float64)
        put(mg, "loss", mini["loss"])
        put(mg, "center", mini["center"])
        put_strings(mg, "no_decay_keys", mini["no_decay"])
        put_state(mg.create_group("student"), mini["student"])
        put_state(mg.create_group("teacher"), mini["teacher"])


# ---------------------------------------- SelfPatch -------------------------------------------

def build_selfpatch_model(cfg: MicroConfig) -> SelfPatchModel:
    backbone = ReferenceViT(img_size=cfg.img_size, patch_size=cfg.patch_size,
                            embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                            has_cls=False, final_norm=False, eps=LN_EPS)
    ca_head = SelfPatchHead(cfg.embed_dim, cfg.num_heads, k_num=cfg.k_num)
    c_head = DINOHead(cfg.embed_dim, cfg.out_dim, cfg.hidden_dim, cfg.bottleneck_dim, cfg.nlayers)
    p_head = DINOHead(cfg.embed_dim, cfg.patch_out_dim, cfg.hidden_dim, cfg.bottleneck_dim,
                      cfg.nlayers)
    return SelfPatchModel(backbone, ca_head, c_head, p_head)


def selfpatch_step(student, teacher, crops, center, patch_center, cfg: MicroConfig,
                   t_records=None, s_records=None):
    with torch.no_grad():
        t_cls, t_pat = selfpatch_forward(teacher, crops, loc=True, records=t_records)
    s_cls, s_pat = selfpatch_forward(student, crops, loc=False, records=s_records)
    out = selfpatch_loss(s_cls, s_pat, t_cls, t_pat, center, patch_center, cfg.student_temp,
                         cfg.teacher_temp, cfg.center_momentum, cfg.patch_loss_weight)
    return t_cls, t_pat, s_cls, s_pat, out


def topk_gaps(sim: torch.Tensor, k: int) -> tuple:
    """(min gap between the k-th and (k+1)-th largest similarity, min gap between any two
    consecutive entries of the k+1 largest) over all (b, i)."""
    top = sim.sort(dim=-1, descending=True).values[..., :k + 1]
    gaps = top[..., :-1] - top[..., 1:]
    return gaps[..., k - 1].min().item(), gaps.min().item()


def write_selfpatch_micro(path: Path) -> None:
    cfg = MICRO
    setup_torch(0)
    student = build_selfpatch_model(cfg)
    ssl_fixture_init_(student)
    round_params_(student)
    teacher = noisy_copy(student, cfg.teacher_noise_std, skip=lambda n: n.endswith("weight_g"))
    center0 = cfg.center_init_std * torch.randn(1, cfg.out_dim)
    pcenter0 = cfg.center_init_std * torch.randn(1, cfg.patch_out_dim)
    student_state, teacher_state = clone_state(student), clone_state(teacher)
    nb14, nb6 = neighbor_table(14), neighbor_table(6)
    check_golden_neighbors(nb14, 14)
    check_golden_neighbors(nb6, 6)

    # inputs: re-draw (next seed) until every top-k choice is well separated
    for input_seed in range(50):
        crops = draw_inputs([(cfg.batch, 3, s, s) for s in cfg.crop_sizes], input_seed)
        t_rec: List[Dict[str, torch.Tensor]] = []
        with torch.no_grad():
            selfpatch_forward(teacher, crops, loc=True, records=t_rec)
        gaps = [topk_gaps(r["similarity"], cfg.k_num) for r in t_rec]
        gap45, gap_all = min(g[0] for g in gaps), min(g[1] for g in gaps)
        if gap_all > 1e-6:
            break
        print(f"  input seed {input_seed}: top-k gap {gap_all:.1e} <= 1e-6, re-drawing")
    else:
        raise RuntimeError("no input seed with well-separated top-k")
    print(f"  input seed {input_seed}: min gap 4th-5th {gap45:.2e}, min gap within top-5 {gap_all:.2e}")

    t_rec, s_rec = [], []
    student.zero_grad(set_to_none=True)
    t_cls, t_pat, s_cls, s_pat, out = selfpatch_step(student, teacher, crops, center0, pcenter0,
                                                     cfg, t_rec, s_rec)
    out["loss"].backward()
    grads = trainable_grads(student)
    v, b = cfg.n_crops, cfg.batch
    assert len(out["cls_terms"]) == 2 * (v - 1) and len(out["patch_terms"]) == v
    for i, r in enumerate(t_rec):
        n = (cfg.crop_sizes[i] // cfg.patch_size) ** 2
        assert r["tokens"].shape == (b, n, cfg.embed_dim) and r["topk"].shape == (b, n, cfg.k_num)
        # top-k indices are positions 0..7 in the neighbour row, by descending similarity
        assert torch.equal(r["topk"], r["similarity"].argsort(dim=-1, descending=True)[..., :cfg.k_num])
        # student patch rows are LN_f of its raw tokens (no aggregation)
        assert s_rec[i]["ca_out"].shape == (b, 1 + n, cfg.embed_dim)

    # fp64 re-run: same neighbours, errors for the Swift tolerances
    s64, t64 = copy.deepcopy(student).double(), copy.deepcopy(teacher).double()
    s64.zero_grad(set_to_none=True)
    t64_rec: List[Dict[str, torch.Tensor]] = []
    _, _, _, _, out64 = selfpatch_step(s64, t64, [c.double() for c in crops], center0.double(),
                                       pcenter0.double(), cfg, t64_rec)
    out64["loss"].backward()
    assert all(torch.equal(a["topk"], r["topk"]) for a, r in zip(t_rec, t64_rec))
    worst_act = max((a[n].double() - r[n]).abs().max().item() for a, r in zip(t_rec, t64_rec)
                    for n in ("tokens", "similarity", "ca_out", "cls_logits", "patch_logits"))
    worst_loss = max(abs(out[n].item() - out64[n].item()) / abs(out64[n].item())
                     for n in ("loss", "loss_cls", "loss_patch"))
    worst_grad, zero_grads = grad_errors(grads, {n: p.grad for n, p in s64.named_parameters()
                                                 if p.requires_grad})
    print(f"  mathematically zero gradients (fp32 noise stored): {zero_grads}")
    print(f"  loss {out['loss'].item():.6f} (cls {out['loss_cls'].item():.6f}, patch "
          f"{out['loss_patch'].item():.6f}); fp32 vs fp64: teacher activations max abs "
          f"{worst_act:.1e}, losses max rel {worst_loss:.1e}, grads worst rel {worst_grad:.1e}")
    assert worst_act < 1e-4 and worst_loss < 1e-5 and worst_grad < 1e-4

    with h5_create(path) as f:
        put_attrs(f, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                  patch_size=cfg.patch_size, img_size=cfg.img_size, batch=b, num_crops=v,
                  num_global_crops=cfg.n_global, global_size=cfg.global_size,
                  local_size=cfg.local_size, out_dim=cfg.out_dim,
                  patch_out_dim=cfg.patch_out_dim, hidden_dim=cfg.hidden_dim,
                  bottleneck_dim=cfg.bottleneck_dim, nlayers=cfg.nlayers, k_num=cfg.k_num,
                  patch_loss_weight=cfg.patch_loss_weight, teacher_temp=cfg.teacher_temp,
                  student_temp=cfg.student_temp, center_momentum=cfg.center_momentum,
                  teacher_noise_std=cfg.teacher_noise_std, center_init_std=cfg.center_init_std,
                  drop_path_rate=0.0, layer_norm_eps=LN_EPS, input_seed=input_seed,
                  min_topk_gap_4_5=gap45, min_topk_gap_top5=gap_all,
                  input_grid=INPUT_GRID, weight_grid=WEIGHT_GRID, torch_version=torch.__version__)
        sg, tg = f.create_group("student"), f.create_group("teacher")
        put_state(sg, student_state)
        put_state(tg, teacher_state)
        put(f, "neighbors_14", nb14, dtype=np.int64)
        put(f, "neighbors_6", nb6, dtype=np.int64)
        ig = f.create_group("inputs")
        for i, c in enumerate(crops):
            put(ig, f"crop{i}", c)
        for i in range(v):
            g = tg.create_group(f"crop{i}")
            r = t_rec[i]
            put(g, "tokens", r["tokens"])
            put(g, "similarity", r["similarity"])
            put(g, "topk", r["topk"], dtype=np.int64)
            put(g, "aggregated", r["ca_out"])
            put(g, "cls_logits", r["cls_logits"])
            put(g, "patch_logits", r["patch_logits"])
            g = sg.create_group(f"crop{i}")
            r = s_rec[i]
            put(g, "ca_out", r["ca_out"])
            put(g, "cls_logits", r["cls_logits"])
            put(g, "patch_logits", r["patch_logits"])
        cg = f.create_group("centers_before")
        put(cg, "center", center0)
        put(cg, "patch_center", pcenter0)
        put(f, "loss_cls", out["loss_cls"].reshape(()))
        put(f, "loss_patch", out["loss_patch"].reshape(()))
        put(f, "loss", out["loss"].reshape(()))
        put(f, "patch_terms", torch.stack([t.detach() for t in out["patch_terms"]]))
        put(f, "cls_terms", torch.stack([t.detach() for t in out["cls_terms"]]))
        put(f, "center_after", out["center_after"])
        put(f, "patch_center_after", out["patch_center_after"])
        put_grads(f.create_group("grads"), grads, zero_grads)


# ----------------------------------------- MoCo v3 --------------------------------------------

def init_bn_buffers_(module: torch.nn.Module, num_batches_tracked: int) -> None:
    """Non-trivial running statistics: mean N(0, 0.1), var 0.5 + U(0, 1) (on WEIGHT_GRID)."""
    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.copy_(round_to_grid_(0.1 * torch.randn(mod.num_features), WEIGHT_GRID))
                mod.running_var.copy_(round_to_grid_(0.5 + torch.rand(mod.num_features), WEIGHT_GRID))
                mod.num_batches_tracked.fill_(num_batches_tracked)


def build_moco(cfg: MocoMicroConfig) -> MoCoV3:
    setup_torch(0)
    grid = cfg.img_size // cfg.patch_size
    base = MoCoViT(cfg.img_size, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads,
                   cfg.dim, cfg.mlp_dim)
    ssl_fixture_init_(base)
    with torch.no_grad():
        base.pos_embed.copy_(sincos_pos_table(grid, cfg.embed_dim))   # fixed, not drawn
    round_params_(base, skip=("pos_embed",))
    init_bn_buffers_(base, cfg.initial_num_batches_tracked)
    frozen = {n for n, p in base.named_parameters() if not p.requires_grad}
    assert frozen == {"pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"}, frozen
    # momentum encoder = base + noise on the trainable parameters; the frozen patch projection and
    # the sin-cos table stay identical (as in training); running stats perturbed as well
    momentum = noisy_copy(base, cfg.momentum_noise_std, skip=lambda n: n in frozen)
    with torch.no_grad():
        for mod in momentum.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.add_(0.01 * torch.randn(mod.num_features))
                mod.running_var.mul_(1 + 0.01 * torch.randn(mod.num_features))
                round_to_grid_(mod.running_mean, WEIGHT_GRID)
                round_to_grid_(mod.running_var, WEIGHT_GRID)
    model = MoCoV3(base, momentum, cfg.dim, cfg.mlp_dim, cfg.temperature)
    ssl_fixture_init_(model.predictor)
    round_params_(model.predictor)
    init_bn_buffers_(model.predictor, cfg.initial_num_batches_tracked)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            assert mod.momentum == cfg.bn_momentum and mod.eps == cfg.bn_eps
    return model.train()


def moco_base_state(model: MoCoV3) -> Dict[str, torch.Tensor]:
    return {**clone_state(model.base_encoder), **clone_state(model.predictor, "predictor.")}


def write_moco_micro(path: Path) -> None:
    cfg = MOCO_MICRO
    model = build_moco(cfg)
    grid = cfg.img_size // cfg.patch_size
    n = grid * grid
    table = sincos_pos_table(grid, cfg.embed_dim)
    table14 = sincos_pos_table(14, cfg.embed_dim)
    check_sincos_golden(table14, 14, cfg.embed_dim)
    input_seed = 0
    x1, x2 = draw_inputs([(cfg.batch, 3, cfg.img_size, cfg.img_size)] * 2, input_seed)
    model0 = copy.deepcopy(model)
    base0, mom0 = moco_base_state(model), clone_state(model.momentum_encoder)
    assert torch.equal(base0["pos_embed"], table)

    rec: Dict[str, torch.Tensor] = {}
    model.zero_grad(set_to_none=True)
    loss = model(x1, x2, cfg.momentum, rec)
    loss.backward()
    grads = {**trainable_grads(model.base_encoder), **trainable_grads(model.predictor, "predictor.")}
    for k in ("pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"):
        assert k not in grads and dict(model.base_encoder.named_parameters())[k].grad is None
    base_after, mom_after = moco_base_state(model), clone_state(model.momentum_encoder)
    for k, v in base0.items():   # no optimiser step: only the BN buffers of the base change
        changed = not torch.equal(v, base_after[k])
        assert changed == (("running_" in k) or ("num_batches" in k)), k
    assert int(base_after["head.1.num_batches_tracked"]) == cfg.initial_num_batches_tracked + 2

    # fp64 re-run from the initial state
    m64 = model0.double()
    rec64: Dict[str, torch.Tensor] = {}
    l64 = m64(x1.double(), x2.double(), cfg.momentum, rec64)
    l64.backward()
    grads64 = {**{k: p.grad for k, p in m64.base_encoder.named_parameters() if p.requires_grad},
               **{"predictor." + k: p.grad for k, p in m64.predictor.named_parameters()}}
    worst_act = max((rec[k].double() - rec64[k]).abs().max().item()
                    for k in ("q1", "q2", "k1", "k2", "ctr_12/logits"))
    worst_loss = max(abs(rec[k].item() - rec64[k].item()) / abs(rec64[k].item())
                     for k in ("loss_12", "loss_21"))
    worst_grad, zero_grads = grad_errors(grads, grads64)
    # norm.bias: a constant shift of every CLS feature is removed by the projector's first BN
    print(f"  mathematically zero gradients (fp32 noise stored): {zero_grads}")
    after64 = {**clone_state(m64.base_encoder), **clone_state(m64.predictor, "predictor.")}
    worst_bn = max((base_after[k].double() - after64[k]).abs().max().item()
                   for k in base_after if "running_" in k)
    print(f"  grid {grid}x{grid}; loss {loss.item():.6f}; fp32 vs fp64: q/k/logits max abs "
          f"{worst_act:.1e}, losses max rel {worst_loss:.1e}, grads worst rel {worst_grad:.1e}, "
          f"running stats max abs {worst_bn:.1e}")
    assert worst_act < 1e-4 and worst_loss < 1e-5 and worst_grad < 1e-4 and worst_bn < 1e-5

    with h5_create(path) as f:
        put_attrs(f, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                  patch_size=cfg.patch_size, img_size=cfg.img_size, grid=grid, num_patches=n,
                  batch=cfg.batch, dim=cfg.dim, mlp_dim=cfg.mlp_dim,
                  temperature=cfg.temperature, momentum=cfg.momentum,
                  momentum_noise_std=cfg.momentum_noise_std, bn_momentum=cfg.bn_momentum,
                  bn_eps=cfg.bn_eps, layer_norm_eps=LN_EPS, input_seed=input_seed,
                  input_grid=INPUT_GRID, weight_grid=WEIGHT_GRID, torch_version=torch.__version__)
        put_state_dict(f.create_group("base"), base0)
        put_state_dict(f.create_group("momentum"), mom0)
        ig = f.create_group("inputs")
        put(ig, "view1", x1)
        put(ig, "view2", x2)
        put(f, "pos_table", table)
        put(f, "pos_table_grid14", table14)
        for k in ("q1", "q2", "k1", "k2"):
            put(f, k, rec[k])
        put(f, "logits_12", rec["ctr_12/logits"])
        put(f, "loss_12", rec["loss_12"].reshape(()))
        put(f, "loss_21", rec["loss_21"].reshape(()))
        put(f, "loss", loss.reshape(()))
        put_state_dict(f.create_group("base_after"), base_after)
        put_state_dict(f.create_group("momentum_after"), mom_after)
        put_grads(f.create_group("grads"), grads, zero_grads)


# ----------------------------------------------------------------------------------------------
# Patch embedding after a convolutional stem (Xiao et al., 2021: early convolutions), torch.nn
# ----------------------------------------------------------------------------------------------

def write_patch_embed_stem(path: Path) -> None:
    """`patch_embed` with a stem of two 3x3 convolutions (stride 1, padding 1), each followed by
    exact GELU, then the patch-7 projection, as torch.nn modules with their default
    initialisation; forward of a [2, 3, 14, 21] input and the gradients of sum(out * w)."""
    torch.manual_seed(11)
    stem = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.GELU(), nn.Conv2d(4, 5, 3, 1, 1), nn.GELU())
    proj = nn.Conv2d(5, 6, 7, 7)
    modules = nn.ModuleDict({"stem": stem, "proj": proj})
    image = torch.randn(2, 3, 14, 21, dtype=torch.float32, requires_grad=True)
    out = proj(stem(image)).flatten(2).transpose(1, 2)  # [batch, patches, dim]
    weights = torch.randn(out.shape, dtype=torch.float32)
    (out * weights).sum().backward()
    with h5_create(path) as f:
        put_state(f.create_group("params"), {k: v for k, v in modules.state_dict().items()})
        put(f, "input", image)
        put(f, "output", out)
        put(f, "loss_weights", weights)
        grads = {k: v.grad for k, v in modules.named_parameters()}
        grads["input_grad"] = image.grad
        put_state(f.create_group("grads"), grads)


# ----------------------------------------------------------------------------------------------
# Registry and entry point. Later sections (augmentations, evaluation) add their writers here.
# ----------------------------------------------------------------------------------------------

FIXTURES: Dict[str, Callable[[Path], None]] = {
    "vit_p16": write_vit_p16,
    "vit_p4": write_vit_p4,
    "schedules": write_schedules,
    "pos_embed_interp": write_pos_embed_interp,
    "dino_micro": write_dino_micro,
    "selfpatch_micro": write_selfpatch_micro,
    "moco_micro": write_moco_micro,
    "patch_embed_stem": write_patch_embed_stem,
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
