"""Small PyTorch reference implementation of the DINO-flavour ViT backbone.

Written from the project spec (shared/reference/ssl-methods-spec.md, section 1), not copied from
the DINO or timm code bases. Parameter names equal DINO's backbone state-dict keys (spec §1.4):

    cls_token, pos_embed, patch_embed.proj.{weight,bias},
    blocks.{i}.norm1.{weight,bias}, blocks.{i}.attn.qkv.{weight,bias},
    blocks.{i}.attn.proj.{weight,bias}, blocks.{i}.norm2.{weight,bias},
    blocks.{i}.mlp.fc1.{weight,bias}, blocks.{i}.mlp.fc2.{weight,bias}, norm.{weight,bias}

`has_cls=False, final_norm=False` gives the SelfPatch backbone variant (spec §3.2).

Every forward accepts an optional `record` dict. When given, intermediate activations are stored
in it (still attached to the autograd graph) under the names used by the HDF5 fixtures:

    patch_embed, pos_embed, tokens,
    blocks.{i}/{norm1,qkv,attn_probs,attn_out,residual1,norm2,fc1,gelu,fc2,output},
    norm, cls

Running this file directly performs the self-checks (timm equivalence, interpolation formula).
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6

Record = Optional[Dict[str, torch.Tensor]]


def _put(record: Record, name: str, value: torch.Tensor) -> None:
    if record is not None:
        record[name] = value


# ----------------------------------------------------------------------------------------------
# Position-embedding interpolation (spec §1.2 step 3)
# ----------------------------------------------------------------------------------------------

def dino_scale_factors(grid_h: int, grid_w: int, n0: int) -> tuple[float, float]:
    """DINO's scale factors: ((H/p + 0.1)/sqrt(N0), (W/p + 0.1)/sqrt(N0))."""
    side = math.sqrt(n0)
    return ((grid_h + 0.1) / side, (grid_w + 0.1) / side)


def interpolate_patch_table(patch_table: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Resize a (1, N0, D) patch position table to (1, grid_h*grid_w, D).

    Bicubic (A=-0.75, align_corners=False), driven by the *scale factor* (not the output size),
    exactly like DINO: source coordinate = (dst + 0.5) / s - 0.5 with s = (g + 0.1)/sqrt(N0).
    Tokens are row-major (index = row * grid_w + col).
    """
    _, n0, dim = patch_table.shape
    side = int(round(math.sqrt(n0)))
    assert side * side == n0, f"patch table with {n0} rows is not a square grid"
    grid = patch_table.reshape(1, side, side, dim).permute(0, 3, 1, 2)  # (1, D, side, side)
    resized = F.interpolate(
        grid,
        scale_factor=dino_scale_factors(grid_h, grid_w, n0),
        mode="bicubic",
        align_corners=False,
    )
    assert resized.shape[-2:] == (grid_h, grid_w), (
        f"interpolation produced {tuple(resized.shape[-2:])}, expected {(grid_h, grid_w)}"
    )
    return resized.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)


def interpolate_pos_table(
    table: torch.Tensor, grid_h: int, grid_w: int, has_cls: bool = True
) -> torch.Tensor:
    """Position table to add for a (grid_h x grid_w) patch grid.

    `table` is (1, N0 + has_cls, D). Returned unchanged when N == N0 and the grid is square
    (spec §1.2: "If N == N0 and H == W the table is added as is"). Otherwise the patch part is
    resized and the class row (if any) is kept unchanged and re-prepended.
    """
    n_prefix = 1 if has_cls else 0
    n0 = table.shape[1] - n_prefix
    if grid_h * grid_w == n0 and grid_h == grid_w:
        return table
    patch = interpolate_patch_table(table[:, n_prefix:], grid_h, grid_w)
    if has_cls:
        return torch.cat([table[:, :1], patch], dim=1)
    return patch


def src_coords(out_size: int, in_size: int) -> list[float]:
    """Source coordinates PyTorch's scale-factor path samples for DINO: (o+0.5)*in/(out+0.1)-0.5."""
    return [(o + 0.5) * in_size / (out_size + 0.1) - 0.5 for o in range(out_size)]


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)                      # (B, D, H/p, W/p)
        return y.flatten(2).transpose(1, 2)   # (B, N, D), row-major tokens


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        assert dim % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x)                                                  # (B, N', 3D)
        _put(record, prefix + "qkv", qkv)
        # rows [0:D) q, [D:2D) k, [2D:3D) v; head j owns [j*d_h, (j+1)*d_h) inside each
        qkv5 = qkv.reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv5[0], qkv5[1], qkv5[2]                                 # (B, h, N', d_h)
        logits = (q @ k.transpose(-2, -1)) * self.scale
        probs = logits.softmax(dim=-1)                                     # (B, h, N', N')
        _put(record, prefix + "attn_probs", probs)
        out = (probs @ v).transpose(1, 2).reshape(b, n, d)                 # heads concatenated
        out = self.proj(out)
        _put(record, prefix + "attn_out", out)
        return out


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=True)
        self.act = nn.GELU(approximate="none")  # exact erf form
        self.fc2 = nn.Linear(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        h = self.fc1(x)
        _put(record, prefix + "fc1", h)
        h = self.act(h)
        _put(record, prefix + "gelu", h)
        y = self.fc2(h)
        _put(record, prefix + "fc2", y)
        return y


class Block(nn.Module):
    """Pre-norm transformer block (drop-path/dropout rate 0: identities)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, eps: float = LN_EPS):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        h = self.norm1(x)
        _put(record, prefix + "norm1", h)
        x = x + self.attn(h, record, prefix)
        _put(record, prefix + "residual1", x)
        h = self.norm2(x)
        _put(record, prefix + "norm2", h)
        x = x + self.mlp(h, record, prefix)
        _put(record, prefix + "output", x)
        return x


class ReferenceViT(nn.Module):
    """DINO ViT backbone. forward(x) returns the final-LN CLS vector (B, D) when has_cls and
    final_norm are on; otherwise the full (normalised or raw) token sequence."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        has_cls: bool = True,
        final_norm: bool = True,
        eps: float = LN_EPS,
    ):
        super().__init__()
        assert img_size % patch_size == 0
        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.num_heads = num_heads
        self.has_cls = has_cls
        self.final_norm = final_norm
        self.eps = eps
        self.num_patches = (img_size // patch_size) ** 2  # N0

        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        if has_cls:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + int(has_cls), embed_dim))
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, eps) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=eps) if final_norm else nn.Identity()

    def prepare_tokens(self, x: torch.Tensor, record: Record = None) -> torch.Tensor:
        b, _, h, w = x.shape
        assert h % self.patch_size == 0 and w % self.patch_size == 0
        gh, gw = h // self.patch_size, w // self.patch_size
        t = self.patch_embed(x)                                            # (B, N, D)
        _put(record, "patch_embed", t)
        if self.has_cls:
            t = torch.cat([self.cls_token.expand(b, -1, -1), t], dim=1)    # (B, N+1, D)
        pos = interpolate_pos_table(self.pos_embed, gh, gw, self.has_cls)
        _put(record, "pos_embed", pos)
        t = t + pos
        _put(record, "tokens", t)
        return t

    def forward_features(self, x: torch.Tensor, record: Record = None) -> torch.Tensor:
        t = self.prepare_tokens(x, record)
        for i, blk in enumerate(self.blocks):
            t = blk(t, record, prefix=f"blocks.{i}/")
        t = self.norm(t)
        if self.final_norm:
            _put(record, "norm", t)
        return t

    def forward(self, x: torch.Tensor, record: Record = None) -> torch.Tensor:
        t = self.forward_features(x, record)
        if self.has_cls and self.final_norm:
            cls = t[:, 0]
            _put(record, "cls", cls)
            return cls
        return t


# ----------------------------------------------------------------------------------------------
# Weight initialisation for fixtures (deliberately non-trivial, so every code path matters)
# ----------------------------------------------------------------------------------------------

def fixture_init_(model: nn.Module, generator: Optional[torch.Generator] = None) -> None:
    """LayerNorm weights 1 + N(0, 0.1); Linear/Conv weights N(0, 0.05); everything else
    (biases incl. LN biases, cls_token, pos_embed) N(0, 0.02). Iterates in named_parameters order."""
    ln_weights = set()
    mat_weights = set()
    for mname, mod in model.named_modules():
        prefix = mname + "." if mname else ""
        if isinstance(mod, nn.LayerNorm):
            ln_weights.add(prefix + "weight")
        elif isinstance(mod, (nn.Linear, nn.Conv2d)):
            mat_weights.add(prefix + "weight")
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            if name in ln_weights:
                p.copy_(1.0 + 0.1 * noise)
            elif name in mat_weights:
                p.copy_(0.05 * noise)
            else:
                p.copy_(0.02 * noise)


def expected_keys(depth: int, has_cls: bool = True, final_norm: bool = True) -> list[str]:
    keys = (["cls_token"] if has_cls else []) + [
        "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    for i in range(depth):
        for sub in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys += [f"blocks.{i}.{sub}.weight", f"blocks.{i}.{sub}.bias"]
    if final_norm:
        keys += ["norm.weight", "norm.bias"]
    return keys


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------

def check_against_timm(model: ReferenceViT, batch: int = 2, atol: float = 1e-5,
                       generator: Optional[torch.Generator] = None) -> float:
    """Load `model`'s weights into timm's VisionTransformer and compare CLS outputs at the
    reference resolution (square, no interpolation). Returns the max abs difference."""
    from functools import partial

    import timm.models.vision_transformer as tvit

    assert model.has_cls and model.final_norm
    ref = tvit.VisionTransformer(
        img_size=model.img_size,
        patch_size=model.patch_size,
        embed_dim=model.embed_dim,
        depth=model.depth,
        num_heads=model.num_heads,
        num_classes=0,
        qkv_bias=True,
        global_pool="token",
        norm_layer=partial(nn.LayerNorm, eps=model.eps),
    ).eval()
    missing, unexpected = ref.load_state_dict(model.state_dict(), strict=True)
    assert not missing and not unexpected
    x = torch.randn(batch, 3, model.img_size, model.img_size, generator=generator)
    with torch.no_grad():
        ours = model.eval()(x)
        theirs = ref(x)
    assert ours.shape == theirs.shape == (batch, model.embed_dim)
    diff = (ours - theirs).abs().max().item()
    assert diff <= atol, f"timm mismatch: max abs diff {diff:.3e} > {atol}"
    return diff


def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):   # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def manual_bicubic(grid: torch.Tensor, out_h: int, out_w: int, scale_h: float, scale_w: float,
                   a: float = -0.75) -> torch.Tensor:
    """Independent separable bicubic in float64 using the scale-factor coordinate map
    src = (dst + 0.5)/s - 0.5, clamped borders. grid: (C, H, W). Used only to cross-check
    F.interpolate (spec §7 reports agreement within ~2e-6)."""
    g = grid.double()
    c, h, w = g.shape

    def resample(axis_len: int, out_len: int, scale: float) -> torch.Tensor:
        m = torch.zeros(out_len, axis_len, dtype=torch.float64)
        for o in range(out_len):
            src = (o + 0.5) / scale - 0.5
            i0 = math.floor(src)
            wts = _cubic_weights(src - i0, a)
            for k, wt in zip(range(i0 - 1, i0 + 3), wts):
                m[o, min(max(k, 0), axis_len - 1)] += wt
        return m

    mh = resample(h, out_h, scale_h)
    mw = resample(w, out_w, scale_w)
    return torch.einsum("oh,chw,pw->cop", mh, g, mw)


def self_check() -> None:
    torch.manual_seed(0)
    for cfg in (dict(img_size=224, patch_size=16), dict(img_size=32, patch_size=4)):
        m = ReferenceViT(embed_dim=48, depth=2, num_heads=3, **cfg)
        fixture_init_(m)
        assert list(dict(m.named_parameters()).keys()) == expected_keys(2)
        d = check_against_timm(m)
        print(f"timm check {cfg}: max abs diff {d:.3e}")
    table = torch.randn(1, 197, 48)
    for gh, gw in ((6, 6), (7, 5), (20, 20)):
        ours = interpolate_pos_table(table, gh, gw)
        sh, sw = dino_scale_factors(gh, gw, 196)
        man = manual_bicubic(table[0, 1:].reshape(14, 14, 48).permute(2, 0, 1), gh, gw, sh, sw)
        man = man.permute(1, 2, 0).reshape(1, gh * gw, 48)
        diff = (ours[:, 1:].double() - man).abs().max().item()
        assert diff < 1e-5, diff
        assert torch.equal(ours[:, :1], table[:, :1])
        # the size-based path (src = (o+0.5)*in/out - 0.5) must give different numbers
        by_size = F.interpolate(table[:, 1:].reshape(1, 14, 14, 48).permute(0, 3, 1, 2),
                                size=(gh, gw), mode="bicubic", align_corners=False)
        by_size = by_size.permute(0, 2, 3, 1).reshape(1, gh * gw, 48)
        assert (by_size - ours[:, 1:]).abs().max().item() > 1e-3
        print(f"bicubic {gh}x{gw}: F.interpolate vs manual max abs diff {diff:.3e}")
    print("reference_vit self-check OK")


if __name__ == "__main__":
    self_check()
