"""PyTorch side of `ssl-bench vit`: timm VisionTransformer (DINO layout, LayerNorm eps 1e-6),
CPU fp32, forward + backward of sum(cls²), measured the same way (one warm-up step, then the
mean of timed steps; peak RSS of this process). One workload per process so the peaks are clean.

    python3 tools/benchmark/pytorch_vit.py --patch 16 --image 224 --batch 16
"""
import argparse
import resource
import time
from functools import partial

import timm
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--dimension", type=int, default=192)
parser.add_argument("--depth", type=int, default=12)
parser.add_argument("--heads", type=int, default=3)
parser.add_argument("--patch", type=int, default=16)
parser.add_argument("--image", type=int, default=224)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--steps", type=int, default=5)
args = parser.parse_args()

torch.manual_seed(0)
model = timm.models.vision_transformer.VisionTransformer(
    img_size=args.image, patch_size=args.patch, embed_dim=args.dimension, depth=args.depth,
    num_heads=args.heads, num_classes=0, qkv_bias=True,
    norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
images = torch.randn(args.batch, 3, args.image, args.image)


def step():
    model.zero_grad()
    model(images).square().sum().backward()


step()
start = time.perf_counter()
for _ in range(args.steps):
    step()
elapsed = (time.perf_counter() - start) / args.steps
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"PyTorch {torch.__version__} ViT d{args.dimension}x{args.depth} p{args.patch} @{args.image}, "
      f"batch {args.batch}: {elapsed * 1000:.1f} ms/step, {args.batch / elapsed:.1f} images/s, "
      f"peak RSS {peak / 1e6:.1f} MB (threads {torch.get_num_threads()})")
