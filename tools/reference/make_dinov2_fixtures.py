"""Write `Tests/Fixtures/dinov2_micro.h5`: DINOv2's Sinkhorn-Knopp targets and KoLeo loss, MoCo
v3's ViT initialisation and iBOT's masked-patch loss and block masks, computed by the official code.

Usage (from the repository root; the official repositories are imported at run time, never
copied into this one):

    git clone https://github.com/facebookresearch/dinov2 /tmp/dinov2
    git -C /tmp/dinov2 checkout b8931f7bf91576930313be2c6d6af376033b35f0
    git clone https://github.com/facebookresearch/moco-v3 /tmp/moco-v3
    git -C /tmp/moco-v3 checkout c349e6e24f40d3fedb22d973f92defa4cedf37a7
    git clone https://github.com/bytedance/ibot /tmp/ibot
    git -C /tmp/ibot checkout da316d82636a7a7356835ef224b13d5f3ace0489
    python3 tools/reference/make_dinov2_fixtures.py --dinov2 /tmp/dinov2 --moco-v3 /tmp/moco-v3 --ibot /tmp/ibot

The checkouts must be at the pinned commits (checked with `git rev-parse HEAD`). fp32, CPU,
1 thread; output is byte-identical from run to run.

Official code used:
- dinov2 `dinov2/loss/dino_clstoken_loss.py` `DINOLoss` (`sinkhorn_knopp_teacher`, `forward`)
  and `dinov2/loss/koleo_loss.py` `KoLeoLoss`; the way `dinov2/train/ssl_meta_arch.py` combines
  them (teacher global crops swapped, loss terms divided by the number of pairs, KoLeo summed
  over the two global-crop chunks, weight `dino.koleo_loss_weight` 0.1) is reproduced line for
  line below.
- moco-v3 `vits.py` `vit_small` (`VisionTransformerMoCo`) with `stop_grad_conv1=True`
  (`main_moco.py --stop-grad-conv1`). moco-v3 was written for timm 0.4.9; with the pinned timm
  1.0.31 two names moved: `timm.models.layers.helpers.to_2tuple` (provided from `timm.layers`)
  and `VisionTransformer.num_tokens` (set to 1, the one class token). Neither touches the
  initialisation, which `VisionTransformerMoCo.__init__` overrides for every parameter except
  the layer norms (weight 1, bias 0 in every timm version).
- ibot `main_ibot.py` `iBOTLoss` (its `patch` term and `update_center`, on a 1-process gloo
  group because `update_center` all-reduces unconditionally) and `loader.py` `ImageFolderMask`
  (block masks on a one-image folder; python `random` seeded with 0). main_ibot imports
  tensorboardX and `evaluation.unsupervised.unsup_cls.eval_pred` at module level; stand-ins are
  registered for both (neither is used here).

Groups and datasets (float32 unless noted):
- `sinkhorn/`: `logits` (16, 64) teacher logits (cosines of unit vectors, as a weight-normalised
  DINO head produces); `temperatures` (2,) float64 = 0.04, 0.07; `targets` (2, 16, 64)
  `DINOLoss.sinkhorn_knopp_teacher(logits, T)` on one process; `targets_world2` (2, 16, 64) the
  same rows split over 2 processes (rows 0..7 on rank 0, 8..15 on rank 1; gloo on loopback,
  `dist.all_reduce` as in the official code), concatenated in rank order.
- `dino_sinkhorn/`: the DINOv2 image loss with `train.centering: sinkhorn_knopp` on the logits
  of `dino_micro.h5` (`teacher_output`, `student_output`; 2 global + 2 local crops, B 2,
  teacher temperature 0.04, student temperature 0.1): `targets` (4, 128) Sinkhorn-Knopp targets
  of the teacher rows in their original crop order, `loss` () = local + global terms.
- `koleo/`: `embeddings` (32, 48) student class tokens of 2 global crops × B 16 (~N(0, 1));
  `neighbors` (2, 16) int64 `pairwise_NNs_inner` per crop; `loss_per_crop` (2,) `KoLeoLoss`;
  `loss` () = 0.1 · sum; `gradient` (32, 48) d loss / d embeddings. Attribute
  `min_neighbor_gap`: the smallest margin between the largest and second-largest inner product
  of any row (the neighbour choice is well defined in float32).
- `mocov3_init/`: for every parameter of `vit_small` except the classifier `head.*` (which
  MoCo v3's builder replaces with the projector), aligned arrays: `keys` (strings),
  `distribution` (strings: `uniform`, `normal`, `zeros`, `ones`, `sincos`), `parameter`
  float64 (uniform bound or normal std, from the formulas of `vits.py`; 0 otherwise), `count`
  int64, `requires_grad` int64, and the official draw's `mean`, `std` (population), `max_abs`
  float64. The script asserts every official draw lies within the bounds and that its mean and
  std are within 6 standard errors of the distribution's (see `check_in_distribution`).
  `pos_embed_mean`, `pos_embed_std` float64 (the fixed table). Attributes `embed_dim`, `depth`,
  `num_heads`, `patch_size`, `img_size`, `seed`.
- `ibot/`: `iBOTLoss(8, 32, ngcrops=2, nlcrops=0, ...)` at epoch 1 (teacher patch temperature
  linspace(0.04, 0.07, 3)[1] = 0.055, attribute `teacher_patch_temperature`; student 0.1, centre
  momentum 0.9): `student_patch`, `teacher_patch` (6, 16, 32) (2 global crops x B 3, 4 x 4
  grid), `masks` (6, 16) int64 (image 5 has none), `center_before`, `center_after` (1, 32),
  `patch_loss` (), `gradient` (6, 16, 32) d patch_loss / d student_patch.
  `masks_default/`, `masks_vit_small/`: 4,000 `ImageFolderMask` masks of a 224-px crop, patch 16
  (14 x 14), with `pred_ratio` / `pred_ratio_var` (float64 datasets) 0.3 / 0 (main_ibot.py's
  defaults) and [0, 0.3] / [0, 0.2] (the README's ViT-S/16 recipe): `count_mean`, `count_std`,
  `fraction_empty` (float64); attributes `grid`, `draws`.
- `ibot_sinkhorn/`: DINOv2's iBOT patch loss with `train.centering: sinkhorn_knopp` on the
  `ibot/` logits and masks (dinov2 `dinov2/loss/ibot_patch_loss.py` `iBOTPatchLoss`, as
  `ssl_meta_arch.py` calls it; attribute `teacher_temperature` 0.07, student 0.1): `targets`
  (hidden patches, 32) `sinkhorn_knopp_teacher` of the teacher rows of the hidden patches, in
  (image, patch) order, on one process; `targets_world2` the same with images 0..2 on rank 0
  and 3..5 on rank 1 (unequal numbers of hidden patches; gloo on loopback), concatenated in
  rank order; `loss` () `forward_masked` with `masks_weight` as `collate.py` computes it;
  `gradient` (6, 16, 32) d loss / d `ibot/student_patch` (0 on visible patches).
Root attributes: `dinov2_commit`, `moco_v3_commit`, `ibot_commit`, `torch_version`, `timm_version`.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import h5_create, put, put_attrs, put_strings, setup_torch  # noqa: E402

DINOV2_COMMIT = "b8931f7bf91576930313be2c6d6af376033b35f0"
MOCO_V3_COMMIT = "c349e6e24f40d3fedb22d973f92defa4cedf37a7"
IBOT_COMMIT = "da316d82636a7a7356835ef224b13d5f3ace0489"
ROOT = Path(__file__).resolve().parents[2]
KOLEO_WEIGHT = 0.1  # dinov2/configs/ssl_default_config.yaml dino.koleo_loss_weight


def require_checkout(path: str, commit: str) -> None:
    head = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    if head.stdout.strip() != commit:
        sys.exit(f"{path} is at {head.stdout.strip()}, expected the pinned commit {commit}")


def import_ibot(ibot: str):
    """`main_ibot.iBOTLoss` and `loader.ImageFolderMask`. main_ibot imports tensorboardX and
    `evaluation.unsupervised.unsup_cls.eval_pred` at module level; neither is used by the loss
    or the masks, so both are stand-ins here."""
    sys.path.insert(0, ibot)
    tensorboard = types.ModuleType("tensorboardX")
    tensorboard.SummaryWriter = None
    sys.modules["tensorboardX"] = tensorboard
    evaluation = types.ModuleType("evaluation.unsupervised.unsup_cls")
    evaluation.eval_pred = None
    sys.modules["evaluation.unsupervised.unsup_cls"] = evaluation
    import main_ibot

    return main_ibot.iBOTLoss, main_ibot.ImageFolderMask


def import_official(dinov2: str, moco_v3: str):
    sys.path.insert(0, dinov2)
    sys.path.insert(0, moco_v3)
    import timm
    import timm.layers
    import timm.models.vision_transformer

    helpers = types.ModuleType("timm.models.layers.helpers")
    helpers.to_2tuple = timm.layers.to_2tuple
    sys.modules["timm.models.layers.helpers"] = helpers
    from dinov2.loss import DINOLoss, KoLeoLoss
    import vits

    vits.VisionTransformerMoCo.num_tokens = 1
    return DINOLoss, KoLeoLoss, vits, timm.__version__


# ------------------------------------------ Sinkhorn-Knopp ----------------------------------------

def sinkhorn_logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    features = F.normalize(torch.randn(16, 24, generator=g), dim=-1)
    prototypes = F.normalize(torch.randn(64, 24, generator=g), dim=-1)
    return features @ prototypes.t()


def sinkhorn_worker(rank: int, world: int, port: int, logits: torch.Tensor, temperatures, dinov2, moco_v3, out):
    torch.set_num_threads(1)
    DINOLoss, _, _, _ = import_official(dinov2, moco_v3)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    rows = logits.shape[0] // world
    part = logits[rank * rows:(rank + 1) * rows]
    loss = DINOLoss(logits.shape[1])
    for index, temperature in enumerate(temperatures):
        out[index, rank * rows:(rank + 1) * rows] = loss.sinkhorn_knopp_teacher(part, teacher_temp=temperature)
    dist.destroy_process_group()


def write_sinkhorn(f: h5py.File, DINOLoss, dinov2: str, moco_v3: str) -> None:
    group = f.create_group("sinkhorn")
    logits = sinkhorn_logits()
    temperatures = [0.04, 0.07]
    loss = DINOLoss(logits.shape[1])
    targets = torch.stack([loss.sinkhorn_knopp_teacher(logits, teacher_temp=t) for t in temperatures])
    world2 = torch.zeros_like(targets).share_memory_()
    mp.spawn(sinkhorn_worker, args=(2, 29517, logits, temperatures, dinov2, moco_v3, world2), nprocs=2, join=True)
    assert torch.allclose(targets.sum(-1), torch.ones(2, 16), atol=1e-5)
    put(group, "logits", logits)
    put(group, "temperatures", temperatures, dtype=np.float64)
    put(group, "targets", targets)
    put(group, "targets_world2", world2)


def write_dino_sinkhorn(f: h5py.File, DINOLoss) -> None:
    """`SSLMetaArch.forward_backward`'s DINO terms with sinkhorn_knopp centring, from the logits
    of `dino_micro.h5` (its networks reproduce them; see DINOFixtureTests)."""
    with h5py.File(ROOT / "Tests/Fixtures/dino_micro.h5", "r") as micro:
        teacher = torch.from_numpy(micro["teacher_output"][()])
        student = torch.from_numpy(micro["student_output"][()])
        teacher_temp = float(micro.attrs["teacher_temp"])
        batch = int(micro.attrs["batch"])
        crops = int(micro.attrs["num_crops"])
    n_global, n_local = 2, crops - 2
    dino_loss = DINOLoss(teacher.shape[1], student_temp=0.1)
    # ssl_meta_arch: the teacher's global cls tokens are chunked and swapped so that A is matched to B.
    swapped = torch.cat(teacher.chunk(n_global)[::-1])
    targets = dino_loss.sinkhorn_knopp_teacher(swapped, teacher_temp=teacher_temp).view(n_global, -1, teacher.shape[1])
    n_global_terms = (n_global - 1) * n_global
    n_local_terms = n_local * n_global
    student_global, student_local = student[: n_global * batch], student[n_global * batch:]
    local_loss = dino_loss(student_output_list=student_local.chunk(n_local),
                           teacher_out_softmaxed_centered_list=targets) / (n_global_terms + n_local_terms)
    global_loss = dino_loss(student_output_list=[student_global],
                            teacher_out_softmaxed_centered_list=[targets.flatten(0, 1)]) * 2 / (n_global_terms + n_local_terms)
    group = f.create_group("dino_sinkhorn")
    put(group, "targets", torch.cat(targets.flatten(0, 1).chunk(n_global)[::-1]))
    put(group, "loss", local_loss + global_loss)


# ------------------------------------------ KoLeo ----------------------------------------------

def write_koleo(f: h5py.File, KoLeoLoss) -> None:
    g = torch.Generator().manual_seed(2)
    embeddings = torch.randn(32, 48, generator=g).requires_grad_()
    koleo = KoLeoLoss()
    per_crop = [koleo(p) for p in embeddings.chunk(2)]
    loss = KOLEO_WEIGHT * sum(per_crop)  # ssl_meta_arch: sum over student_cls_tokens.chunk(2)
    loss.backward()
    with torch.no_grad():
        neighbors = torch.stack([koleo.pairwise_NNs_inner(F.normalize(p, eps=1e-8, p=2, dim=-1))
                                 for p in embeddings.chunk(2)])
        gaps = []
        for p in embeddings.chunk(2):
            x = F.normalize(p, eps=1e-8, p=2, dim=-1)
            dots = x @ x.t()
            dots.fill_diagonal_(-1)
            top = dots.topk(2, dim=1).values
            gaps.append((top[:, 0] - top[:, 1]).min())
        min_gap = float(torch.stack(gaps).min())
    assert min_gap > 1e-4, min_gap
    group = f.create_group("koleo")
    put_attrs(group, weight=KOLEO_WEIGHT, min_neighbor_gap=min_gap)
    put(group, "embeddings", embeddings)
    put(group, "neighbors", neighbors, dtype=np.int64)
    put(group, "loss_per_crop", torch.stack(per_crop))
    put(group, "loss", loss)
    put(group, "gradient", embeddings.grad)


# ------------------------------------------ MoCo v3 initialisation ----------------------------------

def moco_distribution(key: str, tensor: torch.Tensor, embed_dim: int, patch_size: int):
    """The distribution `VisionTransformerMoCo.__init__` draws `key` from: (name, parameter)."""
    if key == "pos_embed":
        return "sincos", 0.0
    if key == "cls_token":
        return "normal", 1e-6
    if key == "patch_embed.proj.weight":
        return "uniform", math.sqrt(6. / float(3 * patch_size * patch_size + embed_dim))
    if key.endswith("attn.qkv.weight"):
        return "uniform", math.sqrt(6. / float(tensor.shape[0] // 3 + tensor.shape[1]))
    if key.endswith(".weight") and tensor.dim() == 2:  # nn.init.xavier_uniform_
        return "uniform", math.sqrt(6. / float(tensor.shape[0] + tensor.shape[1]))
    if ".norm" in key or key.startswith("norm."):
        return ("ones", 0.0) if key.endswith("weight") else ("zeros", 0.0)
    assert key.endswith("bias"), key
    return "zeros", 0.0


def check_in_distribution(key: str, tensor: torch.Tensor, distribution: str, parameter: float) -> None:
    """Bounds, and mean and std within 6 standard errors: U(-a, a) has std a/sqrt(3) and the
    sample std a relative standard error sqrt(0.2 / n) (from Var(x^2) = 4a^4/45); N(0, s^2) has
    a sample std with relative standard error 1 / sqrt(2n)."""
    x = tensor.detach().double().flatten()
    n = x.numel()
    if distribution == "uniform":
        assert x.abs().max() <= parameter and x.abs().max() >= parameter * (1 - 20 / n), key
        std, relative_error = parameter / math.sqrt(3), math.sqrt(0.2 / n)
    elif distribution == "normal":
        std, relative_error = parameter, 1 / math.sqrt(2 * n)
    elif distribution in ("zeros", "ones"):
        assert torch.equal(x, torch.full_like(x, 1.0 if distribution == "ones" else 0.0)), key
        return
    else:
        return
    assert abs(x.mean()) <= 6 * std / math.sqrt(n), key
    assert abs(x.std(unbiased=False) / std - 1) <= 6 * relative_error, key


def write_mocov3_init(f: h5py.File, vits) -> None:
    torch.manual_seed(0)
    model = vits.vit_small(stop_grad_conv1=True)
    parameters = dict(model.named_parameters())
    embed_dim, patch_size = model.embed_dim, model.patch_embed.patch_size[0]
    rows = []
    for key, tensor in model.state_dict().items():
        if key.startswith("head."):
            continue
        distribution, parameter = moco_distribution(key, tensor, embed_dim, patch_size)
        check_in_distribution(key, tensor, distribution, parameter)
        x = tensor.detach().double()
        rows.append((key, distribution, parameter, x.numel(), int(parameters[key].requires_grad),
                     float(x.mean()), float(x.std(unbiased=False)), float(x.abs().max())))
    group = f.create_group("mocov3_init")
    put_attrs(group, embed_dim=embed_dim, depth=len(model.blocks), num_heads=model.blocks[0].attn.num_heads,
              patch_size=patch_size, img_size=model.patch_embed.img_size[0], seed=0)
    columns = list(zip(*rows))
    put_strings(group, "keys", columns[0])
    put_strings(group, "distribution", columns[1])
    put(group, "parameter", columns[2], dtype=np.float64)
    put(group, "count", columns[3], dtype=np.int64)
    put(group, "requires_grad", columns[4], dtype=np.int64)
    put(group, "mean", columns[5], dtype=np.float64)
    put(group, "std", columns[6], dtype=np.float64)
    put(group, "max_abs", columns[7], dtype=np.float64)
    pos_embed = model.pos_embed.detach().double()
    put(group, "pos_embed_mean", pos_embed.mean(), dtype=np.float64)
    put(group, "pos_embed_std", pos_embed.std(unbiased=False), dtype=np.float64)


# ------------------------------------------ iBOT ----------------------------------------------

def write_ibot(f: h5py.File, iBOTLoss, ImageFolderMask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Writes `ibot/` and returns its student and teacher patch logits and its masks (6, 16)."""
    group = f.create_group("ibot")
    batch, grid, prototypes, patch_prototypes, epoch = 3, 4, 8, 32, 1
    g = torch.Generator().manual_seed(3)
    loss = iBOTLoss(prototypes, patch_prototypes, ngcrops=2, nlcrops=0, warmup_teacher_temp=0.04, teacher_temp=0.04,
                    warmup_teacher_temp2=0.04, teacher_temp2=0.07, warmup_teacher_temp_epochs=3, nepochs=5,
                    student_temp=0.1, center_momentum2=0.9)
    loss.center2 = torch.randn(1, 1, patch_prototypes, generator=g) * 0.1
    center_before = loss.center2.clone()
    student_cls = torch.randn(2 * batch, prototypes, generator=g)
    teacher_cls = torch.randn(2 * batch, prototypes, generator=g)
    student_patch = torch.randn(2 * batch, grid * grid, patch_prototypes, generator=g).requires_grad_()
    teacher_patch = torch.randn(2 * batch, grid * grid, patch_prototypes, generator=g)
    masks = [torch.rand(batch, grid, grid, generator=g) < 0.4 for _ in range(2)]
    masks[1][2] = False  # an image without hidden patches: its term is 0 (mask count clamped at 1)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29518", rank=0, world_size=1)
    result = loss((student_cls, student_patch), (teacher_cls, teacher_patch), None, masks, epoch)
    dist.destroy_process_group()
    result["patch"].backward()
    put_attrs(group, epoch=epoch, teacher_patch_temperature=float(loss.teacher_temp2_schedule[epoch]),
              student_temperature=0.1, center_momentum=0.9)
    put(group, "student_patch", student_patch)
    put(group, "teacher_patch", teacher_patch)
    put(group, "masks", torch.cat(masks).flatten(1), dtype=np.int64)
    put(group, "center_before", center_before.reshape(1, patch_prototypes))
    put(group, "patch_loss", result["patch"])
    put(group, "gradient", student_patch.grad)
    put(group, "center_after", loss.center2.reshape(1, patch_prototypes))
    write_ibot_masks(group, ImageFolderMask)
    return student_patch.detach(), teacher_patch, torch.cat(masks).flatten(1)


IBOT_SINKHORN_TEMPERATURE = 0.07


def ibot_sinkhorn_worker(rank: int, world: int, port: int, parts, dinov2, moco_v3, out):
    torch.set_num_threads(1)
    import_official(dinov2, moco_v3)
    from dinov2.loss import iBOTPatchLoss

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    rows = parts[rank]
    start = sum(len(part) for part in parts[:rank])
    out[start:start + len(rows)] = iBOTPatchLoss(rows.shape[1]).sinkhorn_knopp_teacher(
        rows, IBOT_SINKHORN_TEMPERATURE, torch.tensor(len(rows)))
    dist.destroy_process_group()


def write_ibot_sinkhorn(f: h5py.File, student_patch, teacher_patch, masks, dinov2: str, moco_v3: str) -> None:
    from dinov2.loss import iBOTPatchLoss

    group = f.create_group("ibot_sinkhorn")
    hidden = masks.bool()
    loss = iBOTPatchLoss(teacher_patch.shape[-1], student_temp=0.1)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29519", rank=0, world_size=1)
    targets = loss.sinkhorn_knopp_teacher(teacher_patch[hidden], IBOT_SINKHORN_TEMPERATURE, torch.tensor(int(hidden.sum())))
    dist.destroy_process_group()
    parts = [teacher_patch[:3][hidden[:3]], teacher_patch[3:][hidden[3:]]]
    assert len(parts[0]) != len(parts[1])
    world2 = torch.zeros_like(targets).share_memory_()
    mp.spawn(ibot_sinkhorn_worker, args=(2, 29520, parts, dinov2, moco_v3, world2), nprocs=2, join=True)
    student = student_patch.clone().requires_grad_()
    masks_weight = (1 / hidden.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(hidden)[hidden]
    result = loss.forward_masked(student[hidden], targets, student_masks_flat=hidden, masks_weight=masks_weight)
    result.backward()
    put_attrs(group, teacher_temperature=IBOT_SINKHORN_TEMPERATURE)
    put(group, "targets", targets)
    put(group, "targets_world2", world2)
    put(group, "loss", result)
    put(group, "gradient", student.grad)


def write_ibot_masks(group: h5py.Group, ImageFolderMask, draws: int = 4000) -> None:
    """Masked-patch counts of `ImageFolderMask` on a 224-px crop with patch 16 (14 x 14), for
    main_ibot.py's defaults and the ViT-S recipe of the iBOT README."""
    import random
    import tempfile
    from PIL import Image

    settings = {"default": ([0.3], [0.0]), "vit_small": ([0.0, 0.3], [0.0, 0.2])}
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(f"{root}/class0")
        Image.new("RGB", (8, 8)).save(f"{root}/class0/image.png")
        for name, (ratios, spreads) in settings.items():
            dataset = ImageFolderMask(root, patch_size=16, pred_ratio=ratios, pred_ratio_var=spreads,
                                      pred_aspect_ratio=(0.3, 1 / 0.3), pred_shape="block",
                                      transform=lambda image: [torch.zeros(3, 224, 224)])
            random.seed(0)
            counts = np.array([int(dataset[0][2][0].sum()) for _ in range(draws)], dtype=np.float64)
            sub = group.create_group(f"masks_{name}")
            put_attrs(sub, grid=14, draws=draws)
            put(sub, "pred_ratio", ratios, dtype=np.float64)
            put(sub, "pred_ratio_var", spreads, dtype=np.float64)
            put(sub, "count_mean", counts.mean(), dtype=np.float64)
            put(sub, "count_std", counts.std(), dtype=np.float64)
            put(sub, "fraction_empty", (counts == 0).mean(), dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dinov2", required=True, help="a checkout of facebookresearch/dinov2")
    parser.add_argument("--moco-v3", required=True, help="a checkout of facebookresearch/moco-v3")
    parser.add_argument("--ibot", required=True, help="a checkout of bytedance/ibot")
    parser.add_argument("--out", default=str(ROOT / "Tests/Fixtures/dinov2_micro.h5"))
    args = parser.parse_args()
    require_checkout(args.dinov2, DINOV2_COMMIT)
    require_checkout(args.moco_v3, MOCO_V3_COMMIT)
    require_checkout(args.ibot, IBOT_COMMIT)
    dinov2, moco_v3 = os.path.abspath(args.dinov2), os.path.abspath(args.moco_v3)
    DINOLoss, KoLeoLoss, vits, timm_version = import_official(dinov2, moco_v3)
    setup_torch(0)
    with h5_create(Path(args.out)) as f:
        put_attrs(f, dinov2_commit=DINOV2_COMMIT, moco_v3_commit=MOCO_V3_COMMIT,
                  ibot_commit=IBOT_COMMIT, torch_version=torch.__version__, timm_version=timm_version)
        write_sinkhorn(f, DINOLoss, dinov2, moco_v3)
        write_dino_sinkhorn(f, DINOLoss)
        write_koleo(f, KoLeoLoss)
        write_mocov3_init(f, vits)
        student_patch, teacher_patch, masks = write_ibot(f, *import_ibot(os.path.abspath(args.ibot)))
        write_ibot_sinkhorn(f, student_patch, teacher_patch, masks, dinov2, moco_v3)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
