"""PyTorch anchor of `ssl-bench step --preset dino` and `--preset selfpatch-original`: one training
step built from the OFFICIAL modules, imported at run time from checkouts at pinned commits
(facebookresearch/dino 7c446df5b9f45747937fb0d72314eb9f7b66930a, alinlab/SelfPatch
81aef149fa984a32bdbb2cf5a98aa0e072591535; see official.py, which fetches them under
runs/bench/official/ and documents the two import shims it may need). None of their code is in
this repository.

    python3 tools/benchmark/official.py fetch        # once
    python3 tools/benchmark/official_step.py --method dino --precision fp32
    python3 tools/benchmark/official_step.py --method selfpatch --precision bf16

ViT-Tiny/16 (`vit_tiny`: 192 wide, 12 blocks, 3 heads), student drop path 0.1, teacher 0; crops of
N(0, 1) noise, 2 x 224 + 8 x 96 by default; batch 4.

- dino: `utils.MultiCropWrapper(vit_tiny, DINOHead(192, 65536))` for student and teacher,
  `main_dino.DINOLoss` (10 crops, teacher temperature 0.04), the body of `main_dino.train_one_epoch`:
  set lr and weight decay (group 0 only) -> teacher on the 2 global crops, student on all crops,
  loss (centre update) -> zero_grad, backward -> `utils.clip_gradients(student, 3.0)` ->
  `utils.cancel_gradients_last_layer` (epoch 1: nothing frozen) -> AdamW on
  `utils.get_params_groups(student)` -> teacher EMA with momentum 0.996. As in main_dino.py the
  teacher forward runs without torch.no_grad: the teacher's parameters do not require gradients,
  so it records no graph.
- selfpatch: `main_selfpatch.MultiCropWrapper(vit_tiny, SelfPatchHead(192, 3, k_num 4),
  DINOHead(192, 65536), DINOHead(192, 4096))`, `main_selfpatch.DINOLoss` (image loss on the
  aggregation head's class token + 0.1 x patch loss), the body of `main_selfpatch.train_one_epoch`:
  teacher (under torch.no_grad) and student on the global and on the local crops, one call each,
  teacher with its neighbour aggregation (loc=True), then the same update as DINO's.
  SelfPatchHead's neighbour tables exist only for 196 and 36 patches: 224- and 96-pixel crops.

Not reproduced, on purpose: DistributedDataParallel (one process: its gradient all-reduce would
be an identity), CUDA and GradScaler (bf16 autocast needs no loss scaling), the data loader. The
precision: fp32, or bf16 = `torch.autocast("cpu", dtype=torch.bfloat16)` around the forward passes
and the loss, as DINO's `torch.cuda.amp.autocast` wraps them.

The last line is `RESULT workload=... side=pytorch-fp32|pytorch-bf16 ...` (bench_common.py).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
import official  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", choices=["dino", "selfpatch"], required=True)
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--global-size", type=int, default=224)
parser.add_argument("--local-size", type=int, default=96)
parser.add_argument("--local-crops", type=int, default=8)
parser.add_argument("--out-dim", type=int, default=65536, help="K of the image head")
parser.add_argument("--patch-out-dim", type=int, default=4096, help="K_p of SelfPatch's patch head")
parser.add_argument("--checkout", type=Path, help="the official checkout (default runs/bench/official/<method>)")
bench_common.add_common_arguments(parser, workload="")
args = parser.parse_args()
args.workload = args.workload or {"dino": "dino", "selfpatch": "selfpatch-original"}[args.method]
if args.method == "selfpatch":
    if (args.global_size, args.local_size) != (224, 96) or args.local_crops < 1:
        parser.error("official SelfPatchHead only handles 224- and 96-pixel crops (196 and 36 patches) and "
                     "main_selfpatch.py needs local crops")

bench_common.set_threads(args.threads)
stubs = official.import_official(args.method, args.checkout or official.default_checkout(args.method))
official.init_single_process_group()

import utils  # noqa: E402  (the official repository's utils.py)

LR = 0.0005 * args.batch / 256  # lr of main_dino.py at the end of warm-up, linearly scaled
WD, MOMENTUM, CLIP, FREEZE_LAST_LAYER, EPOCH = 0.04, 0.996, 3.0, 1, 1
NCROPS = 2 + args.local_crops

torch.manual_seed(0)
if args.method == "dino":
    import main_dino
    import vision_transformer as vits
    from vision_transformer import DINOHead

    student = utils.MultiCropWrapper(
        vits.vit_tiny(patch_size=16, drop_path_rate=0.1, img_size=[args.global_size]),
        DINOHead(192, args.out_dim, use_bn=False, norm_last_layer=True))
    teacher = utils.MultiCropWrapper(vits.vit_tiny(patch_size=16, img_size=[args.global_size]),
                                     DINOHead(192, args.out_dim, False))
    loss_function = main_dino.DINOLoss(args.out_dim, NCROPS, 0.04, 0.04, 0, 100)
else:
    import main_selfpatch
    import selfpatch_vision_transformer as vits
    from selfpatch_vision_transformer import DINOHead, SelfPatchHead

    backbone = vits.vit_tiny(patch_size=16, drop_path_rate=0.1)
    student = main_selfpatch.MultiCropWrapper(
        backbone, SelfPatchHead(backbone.embed_dim, backbone.num_heads, 4),
        DINOHead(192, args.out_dim, use_bn=False, norm_last_layer=True),
        DINOHead(192, args.patch_out_dim, use_bn=False, norm_last_layer=True))
    teacher_backbone = vits.vit_tiny(patch_size=16)
    teacher = main_selfpatch.MultiCropWrapper(
        teacher_backbone, SelfPatchHead(192, teacher_backbone.num_heads, 4),
        DINOHead(192, args.out_dim, False), DINOHead(192, args.patch_out_dim, False))
    loss_function = main_selfpatch.DINOLoss(args.out_dim, args.patch_out_dim, NCROPS, 0.04, 0.04, 0, 300)

teacher.load_state_dict(student.state_dict())
for parameter in teacher.parameters():
    parameter.requires_grad = False
optimizer = torch.optim.AdamW(utils.get_params_groups(student))

B = args.batch
images = ([torch.randn(B, 3, args.global_size, args.global_size) for _ in range(2)]
          + [torch.randn(B, 3, args.local_size, args.local_size) for _ in range(args.local_crops)])
iteration = [0]


def forward_and_loss():
    """Teacher and student passes and the loss, as train_one_epoch runs them."""
    if args.method == "dino":
        teacher_output = teacher(images[:2])  # only the 2 global views pass through the teacher
        t1 = time.perf_counter()
        student_output = student(images)
        return loss_function(student_output, teacher_output, EPOCH), t1
    with torch.no_grad():
        teacher_output = [teacher(torch.cat(images[:2]), head_only=True, loc=True),
                          teacher(torch.cat(images[2:]), head_only=True, loc=True)]
    t1 = time.perf_counter()
    student_output = [student(torch.cat(images[:2]), head_only=True, loc=False),
                      student(torch.cat(images[2:]), head_only=True, loc=False)]
    loss, _, _ = loss_function(teacher, student, student_output, teacher_output, EPOCH, iteration[0])
    return loss, t1


def step():
    """One step; returns seconds of (teacher forward, student forward + loss, backward,
    clipping + AdamW + EMA)."""
    t0 = time.perf_counter()
    for i, param_group in enumerate(optimizer.param_groups):
        param_group["lr"] = LR
        if i == 0:  # only the first group is regularized
            param_group["weight_decay"] = WD
    with bench_common.autocast(args.precision):
        loss, t1 = forward_and_loss()
    if not math.isfinite(loss.item()):
        sys.exit(f"Loss is {loss.item()}, stopping")
    t2 = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    t3 = time.perf_counter()
    utils.clip_gradients(student, CLIP)
    utils.cancel_gradients_last_layer(EPOCH, student, FREEZE_LAST_LAYER)
    optimizer.step()
    with torch.no_grad():
        for param_q, param_k in zip(student.parameters(), teacher.parameters()):
            param_k.data.mul_(MOMENTUM).add_((1 - MOMENTUM) * param_q.detach().data)
    iteration[0] += 1
    return [t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3]


student.train()
teacher.train()
seconds, split, peak_mb = bench_common.measure(step, args.steps)
locals_text = f" + {args.local_crops}x{args.local_size}" if args.local_crops else ""
print(f"PyTorch {torch.__version__} official {args.method} step ({args.precision}), ViT-Tiny/16, "
      f"2x{args.global_size}{locals_text}, batch {B}: {seconds * 1000:.1f} ms/step, {B / seconds:.2f} images/s, "
      f"peak RSS {peak_mb:.1f} MB")
names = ["teacher forward", "student forward+loss", "backward", "clip+AdamW+EMA"]
print("  split: " + ", ".join(f"{n} {t * 1000:.1f} ms" for n, t in zip(names, split))
      + f" (threads {torch.get_num_threads()})")
commit = official.PINS[args.method][1]
print(bench_common.result_line(args.workload, f"pytorch-{args.precision}", B, seconds, peak_mb,
                               official=f"{args.method}@{commit[:12]}", stubs=",".join(stubs) or "-"))
