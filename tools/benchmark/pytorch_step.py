"""PyTorch side of the SSL training-step benchmark: one full DINO or SelfPatch step as the original
repos run it (spec §2.5, §3.5-3.7), fp32 on CPU with torch's default thread count.

ViT-Tiny/16 (D 192, depth 12, heads 3), student drop-path 0.1, teacher 0; 2x224 + 8x96 crops of
N(0, 1) noise. Step: set lr / wd, teacher forward (no grad), student forward + loss (incl. centre
update), backward, per-parameter gradient clipping at 3.0, AdamW (DINO param groups), teacher EMA.
It is a steady-state step (epoch >= freeze_last_layer), so the last layers are updated too.

    dino:      backbone with cls token + final norm, DINOHead K 65536; teacher sees the 2 global crops
    selfpatch: backbone without cls token / final norm, ca_head, c_head K 65536, p_head K_p 4096;
               teacher sees all 10 crops; loss L_cls + 0.1 L_pat

One warm-up step, then the mean of --steps timed steps; peak RSS of this process (one method per
process so the peaks are clean). Needs torch (and the modules in tools/reference/).

    python3 tools/benchmark/pytorch_step.py --method dino --batch 4 --steps 3
    python3 tools/benchmark/pytorch_step.py --method selfpatch --batch 4 --steps 3
"""
import argparse
import math
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
from reference_ssl import (DINOHead, DINOModel, SelfPatchHead, SelfPatchModel,  # noqa: E402
                           dino_clip_params_, dino_loss, dino_param_group_names, ema_update_,
                           multicrop_forward, resolution_groups, selfpatch_loss)
from reference_vit import Block, ReferenceViT  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--method", choices=["dino", "selfpatch"], required=True)
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--steps", type=int, default=3)
args = parser.parse_args()

D, DEPTH, HEADS, K, K_P = 192, 12, 3, 65536, 4096
LR, WD, EMA, CLIP = 5e-4 * args.batch / 256, 0.04, 0.996, 3.0
STUDENT_TEMP, TEACHER_TEMP, CENTER_MOMENTUM = 0.1, 0.04, 0.9


class DropPathBlock(Block):
    """reference_vit.Block plus DINO's per-sample stochastic depth (active in training mode)."""

    def __init__(self, rate: float):
        super().__init__(D, HEADS)
        self.rate = rate

    def drop_path(self, y):
        if self.rate == 0.0 or not self.training:
            return y
        keep = 1.0 - self.rate
        mask = (keep + torch.rand(y.shape[0], 1, 1, dtype=y.dtype)).floor_()
        return y.div(keep) * mask

    def forward(self, x, record=None, prefix=""):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def backbone(drop_path: float) -> ReferenceViT:
    dino = args.method == "dino"
    vit = ReferenceViT(embed_dim=D, depth=DEPTH, num_heads=HEADS, has_cls=dino, final_norm=dino)
    vit.blocks = nn.ModuleList(DropPathBlock(r) for r in torch.linspace(0, drop_path, DEPTH).tolist())
    return vit


def build(drop_path: float) -> nn.Module:
    if args.method == "dino":
        return DINOModel(backbone(drop_path), DINOHead(D, K))
    return SelfPatchModel(backbone(drop_path), SelfPatchHead(D, HEADS), DINOHead(D, K), DINOHead(D, K_P))


def init_(model: nn.Module) -> None:
    """Spec §1.3 / §3.3: Linear trunc-normal std 0.02 (bounds ±2), bias 0; cls tokens, pos_embed
    trunc-normal 0.02; LayerNorm, patch Conv2d and the weight-norm `weight_v` keep their defaults."""
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            nn.init.trunc_normal_(mod.weight, std=0.02, a=-2.0, b=2.0)
            nn.init.zeros_(mod.bias)
    for name, p in model.named_parameters():
        if name.endswith(("cls_token", "pos_embed")):
            nn.init.trunc_normal_(p, std=0.02, a=-2.0, b=2.0)


def selfpatch_forward(model: SelfPatchModel, crops, loc: bool):
    """Spec §3.5: one call per resolution group, outputs split back per crop (no recording)."""
    cls, pat = [], []
    for s, e in resolution_groups(crops):
        c, p = model.forward_group(torch.cat(crops[s:e]), loc)
        cls += c.chunk(e - s)
        pat += p.chunk(e - s)
    return cls, pat


torch.manual_seed(0)
student, teacher = build(0.1), build(0.0)
init_(student)
teacher.load_state_dict(student.state_dict())
for p in teacher.parameters():
    p.requires_grad_(False)
params = dict(student.named_parameters())
decay, no_decay = dino_param_group_names(student)
optimizer = torch.optim.AdamW([{"params": [params[n] for n in decay]},
                               {"params": [params[n] for n in no_decay], "weight_decay": 0.0}])
B = args.batch
crops = [torch.randn(B, 3, 224, 224) for _ in range(2)] + [torch.randn(B, 3, 96, 96) for _ in range(8)]
state = {"center": torch.zeros(1, K), "patch_center": torch.zeros(1, K_P)}


def teacher_forward():
    if args.method == "dino":
        return multicrop_forward(teacher, crops[:2])
    return selfpatch_forward(teacher, crops, loc=True)


def student_forward_and_loss(teacher_out):
    if args.method == "dino":
        loss, _, state["center"] = dino_loss(multicrop_forward(student, crops), teacher_out,
                                             state["center"], len(crops), STUDENT_TEMP,
                                             TEACHER_TEMP, CENTER_MOMENTUM)
        return loss
    s_cls, s_pat = selfpatch_forward(student, crops, loc=False)
    out = selfpatch_loss(s_cls, s_pat, *teacher_out, state["center"], state["patch_center"],
                         STUDENT_TEMP, TEACHER_TEMP, CENTER_MOMENTUM, patch_weight=0.1)
    state["center"], state["patch_center"] = out["center_after"], out["patch_center_after"]
    return out["loss"]


def step():
    """Returns the seconds spent in (teacher fwd, student fwd + loss, backward, clip+AdamW+EMA)."""
    t0 = time.perf_counter()
    for i, group in enumerate(optimizer.param_groups):
        group["lr"] = LR
        if i == 0:
            group["weight_decay"] = WD
    with torch.no_grad():
        teacher_out = teacher_forward()
    t1 = time.perf_counter()
    loss = student_forward_and_loss(teacher_out)
    assert math.isfinite(loss.item())
    t2 = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    t3 = time.perf_counter()
    dino_clip_params_(student, CLIP)
    optimizer.step()
    ema_update_(teacher, student, EMA)
    t4 = time.perf_counter()
    return torch.tensor([t1 - t0, t2 - t1, t3 - t2, t4 - t3], dtype=torch.float64)


student.train()
teacher.train()
step()
split = sum(step() for _ in range(args.steps)) / args.steps
seconds = split.sum().item()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"PyTorch {torch.__version__} {args.method} step ViT-Tiny/16 batch {B}: "
      f"{seconds * 1000:.1f} ms/step, {B / seconds:.2f} images/s, peak RSS {peak / 1e6:.1f} MB")
names = ["teacher forward", "student forward+loss", "backward", "optimizer+EMA"]
print("  split: " + ", ".join(f"{n} {t * 1000:.1f} ms" for n, t in zip(names, split.tolist()))
      + f" (threads {torch.get_num_threads()})")
