"""PyTorch model of `ssl-bench step --preset fashion-mnist` (the main job's training step), written
for this benchmark with plain torch modules (no timm), fp32 or bf16 autocast.

    python3 tools/benchmark/pytorch_preset_step.py --batch 64 --precision fp32
    python3 tools/benchmark/pytorch_preset_step.py --batch 64 --tasks dino,selfpatch,moco

What it computes, from Sources/Plugins/Presets.swift (`fashionMNIST`) and the tasks' sources:
- Backbone (DINO layout): ViT 192 wide, 3 blocks, 3 heads, patch 7, LayerNorm eps 1e-6, class
  token, learned position table for the 28-pixel grid (4 x 4), interpolated bicubically for the
  21-pixel local crops (3 x 3) as DINO's `interpolate_pos_encoding` does (scale (n + 0.1) / 4),
  final norm; no stochastic depth. Crops: 2 x 28 + 4 x 21 of N(0, 1) noise, batch 64 (the
  preset trains in batches of 16; --patch 4 --local-size 12 is the preset before 2026-12-03). Views of
  one size run as one batch (DINO's multi-crop grouping), student over every view; the teacher
  over the global crops, and over the local ones too when selfpatch is on.
- dino (weight 1): DINOHead 192 -> 512 -> 512 -> 128 -> K 256 (GELU, L2 normalisation, weight-
  normalised last layer with g = 1 frozen) on the class token after the final norm; teacher
  targets softmax((t - c) / 0.04) of the 2 global crops, student temperature 0.1, every
  (global target, other view) pair; centre EMA 0.9 over the teacher's global-crop logits.
- selfpatch (weight 0.1), this project's default variant (`image-embedding` off, SelfPatch.swift):
  no class-attention blocks. For every view the teacher picks each patch's 4 most cosine-similar
  of its 8 neighbours on the wrapped-around grid (raw last-block tokens), averages them, applies
  the aggregation head's LayerNorm and a patch DINOHead (512 / 128 / K_p 128); the student's own
  raw last-block tokens go through its LayerNorm and patch head; per-view mean cross-entropy,
  averaged over the views; patch centre EMA 0.9 over every token of every view.
- koleo (weight 0.5): DINOv2's KoLeoLoss on the student's class-token embeddings of each global
  crop separately (L2-normalised with eps 1e-8, nearest neighbour by inner product, pairwise
  distance with eps 1e-8, -mean log(d + 1e-8)), summed over the 2 crops, computed in float32
  (DINOv2 disables autocast there).
- moco (weight 1, only with --tasks): MoCo v3's projector 192 -> 4096 -> 4096 -> 256 and predictor
  256 -> 4096 -> 256 (bias-free Linear, BatchNorm1d, ReLU, last BatchNorm without affine), the
  teacher's projector as momentum encoder on the class tokens of the 2 global crops, symmetric
  InfoNCE at tau 0.2 scaled by 2 tau.
- Update: loss = sum of weight x task loss, one backward (SwiftSSL runs one backward per task down
  to the backbone's output to log each task's gradient norm, then one through the backbone: the
  same arithmetic), DINO's per-parameter clipping at 3.0, AdamW with DINO's groups (no decay for
  biases and 1-D tensors) at lr 2e-3 x 64 / 256, wd 0.04, then the teacher EMA at momentum 0.99
  over every parameter it has (backbone and the tasks' teacher heads).

The last line is `RESULT workload=fashion-mnist side=pytorch-fp32|pytorch-bf16 ...` (bench_common.py).
"""
import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

TASK_WEIGHTS = {"dino": 1.0, "selfpatch": 0.1, "koleo": 0.5, "moco": 1.0}  # the preset's; moco's default

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--tasks", default="dino,selfpatch,koleo", help="comma-separated, of " + ",".join(TASK_WEIGHTS))
parser.add_argument("--dimension", type=int, default=192)
parser.add_argument("--depth", type=int, default=3)
parser.add_argument("--heads", type=int, default=3)
parser.add_argument("--patch", type=int, default=7)
parser.add_argument("--global-size", type=int, default=28)
parser.add_argument("--local-size", type=int, default=21)
parser.add_argument("--local-crops", type=int, default=4)
parser.add_argument("--attention", choices=["explicit", "sdpa"], default="explicit",
                    help="explicit: softmax(q k^T / sqrt(d)) v as DINO's Attention; sdpa: F.scaled_dot_product_attention")
bench_common.add_common_arguments(parser, workload="fashion-mnist")
args = parser.parse_args()
TASKS = [t.strip() for t in args.tasks.split(",") if t.strip()]
if not TASKS or any(t not in TASK_WEIGHTS for t in TASKS):
    parser.error(f"--tasks {args.tasks}: choose from {', '.join(TASK_WEIGHTS)}")

D = args.dimension
DINO_K, PATCH_K, HIDDEN, BOTTLENECK = 256, 128, 512, 128
NEIGHBOURS, TEACHER_TEMP, STUDENT_TEMP, CENTER_MOMENTUM = 4, 0.04, 0.1, 0.9
MOCO_DIM, MOCO_MLP, MOCO_TAU = 256, 4096, 0.2
LR, WD, CLIP, TEACHER_MOMENTUM, KOLEO_EPS = 2e-3 * args.batch / 256, 0.04, 3.0, 0.99, 1e-8


def trunc_normal_(tensor):
    return nn.init.trunc_normal_(tensor, std=0.02, a=-2.0, b=2.0)


def init_linear(module):
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        if args.attention == "sdpa":
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = ((q @ k.transpose(-2, -1)) * (dim // self.heads) ** -0.5).softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.grid = args.global_size // args.patch
        self.patch_embed = nn.Conv2d(3, D, kernel_size=args.patch, stride=args.patch)
        self.cls_token = nn.Parameter(trunc_normal_(torch.empty(1, 1, D)))
        self.pos_embed = nn.Parameter(trunc_normal_(torch.empty(1, 1 + self.grid ** 2, D)))
        self.blocks = nn.ModuleList(Block(D, args.heads) for _ in range(args.depth))
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.blocks.apply(init_linear)

    def position_embedding(self, height, width):
        """DINO's interpolation: bicubic, scale factor (n + 0.1) / reference grid."""
        if (height, width) == (self.grid, self.grid):
            return self.pos_embed
        table = self.pos_embed[:, 1:].reshape(1, self.grid, self.grid, D).permute(0, 3, 1, 2)
        table = F.interpolate(table, mode="bicubic",
                              scale_factor=((height + 0.1) / self.grid, (width + 0.1) / self.grid))
        assert table.shape[-2:] == (height, width)
        return torch.cat([self.pos_embed[:, :1], table.permute(0, 2, 3, 1).reshape(1, height * width, D)], dim=1)

    def forward(self, images):
        """Returns the last block's raw tokens and the tokens after the final norm."""
        x = self.patch_embed(images)
        height, width = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position_embedding(height, width)
        for block in self.blocks:
            x = block(x)
        return x, self.norm(x)


class WeightNormLinear(nn.Module):
    """DINOHead's last layer, W = g * v / ||v|| per row, g frozen at 1 (norm_last_layer)."""

    def __init__(self, inputs, outputs):
        super().__init__()
        bound = 1 / math.sqrt(inputs)
        self.weight_v = nn.Parameter(torch.empty(outputs, inputs).uniform_(-bound, bound))
        self.weight_g = nn.Parameter(torch.ones(outputs, 1), requires_grad=False)

    def forward(self, x):
        return F.linear(x, self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True)))


class DINOHead(nn.Module):
    def __init__(self, inputs, outputs):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(inputs, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN), nn.GELU(),
                                 nn.Linear(HIDDEN, BOTTLENECK))
        self.mlp.apply(init_linear)
        self.last_layer = WeightNormLinear(BOTTLENECK, outputs)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


def moco_mlp(layers, inputs):
    """MoCo v3's _build_mlp: bias-free Linear, BatchNorm1d, ReLU; the last BatchNorm without affine."""
    steps = []
    for layer in range(layers):
        last = layer == layers - 1
        steps.append(nn.Linear(inputs if layer == 0 else MOCO_MLP, MOCO_DIM if last else MOCO_MLP, bias=False))
        steps.append(nn.BatchNorm1d(MOCO_DIM if last else MOCO_MLP, affine=not last))
        if not last:
            steps.append(nn.ReLU())
    return nn.Sequential(*steps)


def build_student() -> nn.ModuleDict:
    network = nn.ModuleDict({"backbone": VisionTransformer()})
    if "dino" in TASKS:
        network["dino"] = nn.ModuleDict({"head": DINOHead(D, DINO_K)})
    if "selfpatch" in TASKS:
        network["selfpatch"] = nn.ModuleDict({"ca_head_norm": nn.LayerNorm(D, eps=1e-6),
                                              "p_head": DINOHead(D, PATCH_K)})
    if "moco" in TASKS:
        network["moco"] = nn.ModuleDict({"head": moco_mlp(3, D), "predictor": moco_mlp(2, MOCO_DIM)})
    return network


def neighbour_table(height, width):
    """The 8 neighbours of every cell in a 3 x 3 window wrapping around the grid, ascending."""
    rows = []
    for cell in range(height * width):
        r, c = divmod(cell, width)
        rows.append(sorted(((r + dr) % height) * width + (c + dc) % width
                           for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc))
    return torch.tensor(rows)


def soft_cross_entropy(student_logits, targets):
    return torch.sum(-targets * F.log_softmax(student_logits / STUDENT_TEMP, dim=-1), dim=-1).mean()


torch.manual_seed(0)
bench_common.set_threads(args.threads)
student = build_student()
teacher = copy.deepcopy(student)
if "moco" in TASKS:
    del teacher["moco"]["predictor"]
for parameter in teacher.parameters():
    parameter.requires_grad = False
student_parameters = dict(student.named_parameters())
ema_pairs = [(student_parameters[name], parameter) for name, parameter in teacher.named_parameters()]
trainable = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
optimizer = torch.optim.AdamW([
    {"params": [p for n, p in trainable if not (n.endswith(".bias") or p.ndim == 1)]},
    {"params": [p for n, p in trainable if n.endswith(".bias") or p.ndim == 1], "weight_decay": 0.0}])
state = {"center": torch.zeros(1, DINO_K), "patch_center": torch.zeros(1, PATCH_K)}

B = args.batch
views = ([torch.randn(B, 3, args.global_size, args.global_size) for _ in range(2)]
         + [torch.randn(B, 3, args.local_size, args.local_size) for _ in range(args.local_crops)])
groups = [(0, 2)] + ([(2, len(views))] if args.local_crops else [])
tables = {size: neighbour_table(size // args.patch, size // args.patch) for size in {args.global_size, args.local_size}}


def passes(network, group_list):
    """Per view: (raw last-block patch tokens, class token after the final norm)."""
    patches, classes = [], []
    for start, end in group_list:
        last, normed = network["backbone"](torch.cat(views[start:end]))
        patches += last[:, 1:].chunk(end - start)
        classes += normed[:, 0].chunk(end - start)
    return patches, classes


def dino_loss(student_cls, teacher_cls):
    student_logits = student["dino"]["head"](torch.cat(student_cls)).chunk(len(views))
    with torch.no_grad():
        teacher_logits = teacher["dino"]["head"](torch.cat(teacher_cls[:2]))
        targets = F.softmax((teacher_logits - state["center"]) / TEACHER_TEMP, dim=-1).chunk(2)
    terms = [soft_cross_entropy(student_logits[v], targets[i]) for i in range(2) for v in range(len(views)) if v != i]
    with torch.no_grad():
        state["center"] = (state["center"] * CENTER_MOMENTUM
                           + teacher_logits.float().mean(dim=0, keepdim=True) * (1 - CENTER_MOMENTUM))
    return sum(terms) / len(terms)


def selfpatch_loss(student_patches, teacher_patches):
    terms, teacher_sum, teacher_rows = [], 0, 0
    for start, end in groups:
        count = end - start
        tokens = torch.cat(teacher_patches[start:end])  # [views * B, N, D]
        rows, cells, _ = tokens.shape
        with torch.no_grad():
            table = tables[views[start].shape[-1]]
            normalized = F.normalize(tokens, dim=-1)
            similarity = (normalized[:, table] * normalized.unsqueeze(2)).sum(-1)  # [rows, N, 8]
            chosen = table.expand(rows, -1, -1).gather(2, similarity.topk(NEIGHBOURS, dim=-1).indices)
            neighbours = tokens.gather(1, chosen.reshape(rows, -1, 1).expand(-1, -1, D)).reshape(rows, cells, NEIGHBOURS, D)
            summary = teacher["selfpatch"]["ca_head_norm"](neighbours.mean(dim=2))
            teacher_logits = teacher["selfpatch"]["p_head"](summary.reshape(-1, D))
            targets = F.softmax((teacher_logits - state["patch_center"]) / TEACHER_TEMP, dim=-1).chunk(count)
            teacher_sum = teacher_sum + teacher_logits.float().sum(dim=0, keepdim=True)
            teacher_rows += teacher_logits.shape[0]
        own = torch.cat(student_patches[start:end])
        student_logits = student["selfpatch"]["p_head"](student["selfpatch"]["ca_head_norm"](own).reshape(-1, D))
        terms += [soft_cross_entropy(s, t) for s, t in zip(student_logits.chunk(count), targets)]
    with torch.no_grad():
        state["patch_center"] = (state["patch_center"] * CENTER_MOMENTUM
                                 + teacher_sum / teacher_rows * (1 - CENTER_MOMENTUM))
    return sum(terms) / len(terms)


def koleo_loss(student_cls):
    total = 0
    with torch.autocast("cpu", enabled=False):
        for embeddings in student_cls[:2]:
            x = F.normalize(embeddings.float(), eps=KOLEO_EPS, p=2, dim=-1)
            with torch.no_grad():
                dots = x @ x.t()
                dots.fill_diagonal_(-1)
                nearest = dots.argmax(dim=1)
            distances = F.pairwise_distance(x, x[nearest], p=2, eps=KOLEO_EPS)
            total = total - torch.log(distances + KOLEO_EPS).mean()
    return total


def moco_loss(student_cls, teacher_cls):
    queries = [student["moco"]["predictor"](student["moco"]["head"](student_cls[v])) for v in range(2)]
    with torch.no_grad():
        keys = [F.normalize(teacher["moco"]["head"](teacher_cls[v]), dim=1) for v in range(2)]
    labels = torch.arange(B)

    def contrastive(query, key):
        logits = F.normalize(query, dim=1) @ key.t() / MOCO_TAU
        return F.cross_entropy(logits, labels) * (2 * MOCO_TAU)

    return contrastive(queries[0], keys[1]) + contrastive(queries[1], keys[0])


def step():
    """One step; returns seconds of (teacher passes, student passes + losses, backward,
    clipping + AdamW + EMA)."""
    t0 = time.perf_counter()
    for i, group in enumerate(optimizer.param_groups):
        group["lr"] = LR
        if i == 0:
            group["weight_decay"] = WD
    with bench_common.autocast(args.precision):
        with torch.no_grad():
            teacher_patches, teacher_cls = passes(teacher, groups if "selfpatch" in TASKS else groups[:1])
        t1 = time.perf_counter()
        student_patches, student_cls = passes(student, groups)
        losses = {}
        if "dino" in TASKS:
            losses["dino"] = dino_loss(student_cls, teacher_cls)
        if "selfpatch" in TASKS:
            losses["selfpatch"] = selfpatch_loss(student_patches, teacher_patches)
        if "koleo" in TASKS:
            losses["koleo"] = koleo_loss(student_cls)
        if "moco" in TASKS:
            losses["moco"] = moco_loss(student_cls, teacher_cls)
        loss = sum(TASK_WEIGHTS[name] * value for name, value in losses.items())
    if not math.isfinite(loss.item()):
        sys.exit(f"Loss is {loss.item()}, stopping")
    t2 = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    t3 = time.perf_counter()
    for _, parameter in trainable:  # DINO's utils.clip_gradients
        if parameter.grad is not None:
            norm = parameter.grad.norm(2)
            parameter.grad.mul_((CLIP / (norm + 1e-6)).clamp(max=1.0))
    optimizer.step()
    with torch.no_grad():
        for student_parameter, teacher_parameter in ema_pairs:
            teacher_parameter.mul_(TEACHER_MOMENTUM).add_(student_parameter.detach(), alpha=1 - TEACHER_MOMENTUM)
    return [t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3]


student.train()
teacher.train()
seconds, split, peak_mb = bench_common.measure(step, args.steps)
print(f"PyTorch {torch.__version__} fashion-mnist preset step ({'+'.join(TASKS)}, {args.precision}, "
      f"{args.attention} attention), ViT {D}x{args.depth} p{args.patch}, 2x{args.global_size} + "
      f"{args.local_crops}x{args.local_size}, batch {B}: {seconds * 1000:.1f} ms/step, {B / seconds:.1f} images/s, "
      f"peak RSS {peak_mb:.1f} MB")
names = ["teacher passes", "student passes+losses", "backward", "clip+AdamW+EMA"]
print("  split: " + ", ".join(f"{n} {t * 1000:.1f} ms" for n, t in zip(names, split))
      + f" (threads {torch.get_num_threads()})")
print(bench_common.result_line(args.workload, f"pytorch-{args.precision}", B, seconds, peak_mb,
                               tasks="+".join(TASKS), attention=args.attention))
