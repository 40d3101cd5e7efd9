"""PyTorch reference modules for the SSL plugins: DINO, DINO + SelfPatch, MoCo v3 (ViT).

Written from the project spec (shared/reference/ssl-methods-spec.md §2, §3, §4), not copied from
the DINO / SelfPatch / MoCo v3 code bases. Parameter names equal the state-dict keys of the
original checkpoints (spec §2.1, §3.10, §4.2), so fixtures can be loaded by key in Swift.

    DINOHead            mlp.{0,2,4}.{weight,bias}, last_layer.weight_g (K,1), last_layer.weight_v (K,bn)
    dino_loss           §2.3 (returns the per-pair terms and the updated center as well)
    multicrop_forward   §2.2 (one backbone pass per run of consecutive equal-resolution crops)
    ClassAttentionBlock §3.3 (norm1, attn.{q,k,v,proj}, norm2, mlp.{fc1,fc2})
    SelfPatchHead       §3.4 (cls_token, cls_blocks.{0,1}, norm; toroidal neighbour table, top-k)
    selfpatch_loss      §3.6
    moco_mlp            §4.2 (Linear without bias, BatchNorm1d, ReLU; last BN affine=False)
    sincos_pos_table    §4.1
    MoCoViT, moco_step  §4.3 (momentum update inside the forward, ctr loss)
    dino_param_group_names, dino_clip_params_, cancel_last_layer_grads_, ema_update_   §2.5
    (the schedules live in make_fixtures.cosine_scheduler)

Every forward accepts an optional `record` dict that receives named intermediates (still attached
to the autograd graph). Running the file performs the self-checks (weight norm vs PyTorch's
parametrisation, golden neighbour rows, sin-cos golden token, DINO loss pair count).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_vit import LN_EPS, Mlp, ReferenceViT

Record = Optional[Dict[str, torch.Tensor]]


def _put(record: Record, name: str, value: torch.Tensor) -> None:
    if record is not None:
        record[name] = value


# ----------------------------------------------------------------------------------------------
# DINO head (spec §2.1)
# ----------------------------------------------------------------------------------------------

class WeightNormLinear(nn.Module):
    """Bias-free Linear with per-output-row weight norm: W[k, :] = g_k * v_k / ||v_k||_2.

    Parameters `weight_g` (K, 1) and `weight_v` (K, in) -- the key names of the original
    (pre-parametrisation) `torch.nn.utils.weight_norm`. No epsilon in the norm (as PyTorch)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1))
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.uniform_(self.weight_v, -1.0 / math.sqrt(in_dim), 1.0 / math.sqrt(in_dim))

    def effective_weight(self) -> torch.Tensor:
        norm = self.weight_v.norm(p=2, dim=1, keepdim=True)          # (K, 1)
        return self.weight_v * (self.weight_g / norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight())


class DINOHead(nn.Module):
    """MLP (Linear-GELU)*(nlayers-1) + Linear to the bottleneck, L2 normalisation (eps 1e-12),
    weight-normalised bias-free last layer. With norm_last_layer the gains g are frozen (at 1)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, nlayers: int = 3, use_bn: bool = False,
                 norm_last_layer: bool = True):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            layers: List[nn.Module] = [nn.Linear(in_dim, bottleneck_dim)]
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad_(False)

    def forward(self, x: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        u = self.mlp(x)
        _put(record, prefix + "mlp_out", u)
        u_hat = F.normalize(u, p=2, dim=-1, eps=1e-12)
        _put(record, prefix + "normalized", u_hat)
        w = self.last_layer.effective_weight()
        _put(record, prefix + "last_layer_weight", w)
        logits = F.linear(u_hat, w)
        _put(record, prefix + "logits", logits)
        return logits


class DINOModel(nn.Module):
    """Student/teacher container with the checkpoint prefixes `backbone.` and `head.`."""

    def __init__(self, backbone: ReferenceViT, head: DINOHead):
        super().__init__()
        self.backbone = backbone
        self.head = head


def resolution_groups(crops: Sequence[torch.Tensor]) -> List[Tuple[int, int]]:
    """[start, end) index ranges of consecutive crops with equal width (spec §2.2)."""
    groups: List[Tuple[int, int]] = []
    start = 0
    for i in range(1, len(crops) + 1):
        if i == len(crops) or crops[i].shape[-1] != crops[start].shape[-1]:
            groups.append((start, i))
            start = i
    return groups


def multicrop_forward(model: DINOModel, crops: Sequence[torch.Tensor],
                      record: Record = None) -> torch.Tensor:
    """One backbone pass per resolution group, CLS outputs concatenated in crop order, head once.
    Row block [vB, (v+1)B) of the result belongs to crop v."""
    feats = [model.backbone(torch.cat(list(crops[s:e]), dim=0)) for s, e in resolution_groups(crops)]
    return model.head(torch.cat(feats, dim=0), record)


def dino_loss(student_output: torch.Tensor, teacher_output: torch.Tensor, center: torch.Tensor,
              n_crops: int, student_temp: float, teacher_temp: float, center_momentum: float,
              n_teacher_crops: int = 2):
    """Spec §2.3. Returns (loss, [pair terms in loop order i, v != i ascending], new center).
    The center update uses the raw teacher output and does not touch the loss."""
    s_chunks = (student_output / student_temp).chunk(n_crops)
    t_probs = F.softmax((teacher_output - center) / teacher_temp, dim=-1).detach()
    t_chunks = t_probs.chunk(n_teacher_crops)
    terms: List[torch.Tensor] = []
    total = None
    for i, p in enumerate(t_chunks):
        for v in range(n_crops):
            if v == i:
                continue
            term = torch.sum(-p * F.log_softmax(s_chunks[v], dim=-1), dim=-1).mean()
            terms.append(term)
            total = term if total is None else total + term
    loss = total / len(terms)
    with torch.no_grad():
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / teacher_output.shape[0]
        new_center = center * center_momentum + batch_center * (1 - center_momentum)
    return loss, terms, new_center


# ----------------------------------------------------------------------------------------------
# DINO optimiser pieces (spec §2.5)
# ----------------------------------------------------------------------------------------------

def dino_param_group_names(model: nn.Module) -> Tuple[List[str], List[str]]:
    """(regularised, not regularised) trainable parameter names: names ending in `.bias` or 1-D
    tensors are not regularised; frozen parameters (weight_g) are excluded."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".bias") or p.ndim == 1:
            no_decay.append(name)
        else:
            decay.append(name)
    return decay, no_decay


def dino_clip_params_(model: nn.Module, clip: float) -> Dict[str, float]:
    """Per-parameter clipping in place: g <- g * clip/(||g|| + 1e-6) if that factor is < 1.
    Returns {name: coefficient} of the clipped tensors."""
    clipped = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        n = p.grad.detach().norm(2)
        coef = clip / (n + 1e-6)
        if coef < 1:
            p.grad.detach().mul_(coef)
            clipped[name] = float(coef)
    return clipped


def cancel_last_layer_grads_(model: nn.Module, epoch: int, freeze_last_layer: int) -> None:
    if epoch >= freeze_last_layer:
        return
    for name, p in model.named_parameters():
        if "last_layer" in name:
            p.grad = None


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, m: float) -> None:
    """theta_t <- m theta_t + (1 - m) theta_s for every parameter (matched by name); buffers untouched."""
    s_params = dict(student.named_parameters())
    for name, pt in teacher.named_parameters():
        pt.mul_(m).add_((1 - m) * s_params[name].detach())


# ----------------------------------------------------------------------------------------------
# SelfPatch (spec §3.3, §3.4, §3.6)
# ----------------------------------------------------------------------------------------------

class ClassAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        assert dim % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim, bias=True)
        self.k = nn.Linear(dim, dim, bias=True)
        self.v = nn.Linear(dim, dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, u: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        """u: (B', 1+M, D) normalised [class; tokens]. Only the class row queries."""
        b, n, d = u.shape
        h, dh = self.num_heads, self.head_dim
        q = self.q(u[:, 0:1]).reshape(b, 1, h, dh).transpose(1, 2) * self.scale   # (B',h,1,dh)
        k = self.k(u).reshape(b, n, h, dh).transpose(1, 2)                          # (B',h,1+M,dh)
        v = self.v(u).reshape(b, n, h, dh).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)                            # (B',h,1,1+M)
        _put(record, prefix + "attn_probs", attn)
        y = (attn @ v).transpose(1, 2).reshape(b, 1, d)
        return self.proj(y)


class ClassAttentionBlock(nn.Module):
    """CaiT-style class-attention block without LayerScale (spec §3.3): returns the updated class
    token c'' = c' + MLP(LN2(c')), c' = c + CA(LN1([c; X])). X is never updated."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, eps: float = LN_EPS):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ClassAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, c: torch.Tensor, record: Record = None,
                prefix: str = "") -> torch.Tensor:
        u = self.norm1(torch.cat([c, x], dim=1))
        c1 = c + self.attn(u, record, prefix)
        c2 = c1 + self.mlp(self.norm2(c1))
        _put(record, prefix + "output", c2)
        return c2


def neighbor_table(g: int) -> torch.Tensor:
    """(g*g, 8) int64: the 3x3 toroidal neighbourhood of each patch minus itself, ascending."""
    rows = []
    for i in range(g * g):
        r, c = divmod(i, g)
        cells = {((r + dr) % g) * g + (c + dc) % g for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
        cells.discard(i)
        assert len(cells) == 8
        rows.append(sorted(cells))
    return torch.tensor(rows, dtype=torch.int64)


GOLDEN_NEIGHBORS = {  # spec §3.4
    14: {0: [1, 13, 14, 15, 27, 182, 183, 195], 15: [0, 1, 2, 14, 16, 28, 29, 30],
         195: [0, 12, 13, 168, 180, 181, 182, 194]},
    6: {0: [1, 5, 6, 7, 11, 30, 31, 35]},
}


def check_golden_neighbors(table: torch.Tensor, g: int) -> None:
    assert table.shape == (g * g, 8) and table.dtype == torch.int64
    for i, row in GOLDEN_NEIGHBORS[g].items():
        assert table[i].tolist() == row, (g, i, table[i].tolist())


class SelfPatchHead(nn.Module):
    """`ca_head` (spec §3.4): cls_token, cls_blocks.{0,1}, norm. loc=False: O = LN([g2; X]);
    loc=True: the patch rows are the class-attention aggregation of each patch's top-k neighbours."""

    def __init__(self, dim: int, num_heads: int, k_num: int = 4, depth: int = 2,
                 eps: float = LN_EPS):
        super().__init__()
        self.k_num = k_num
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_blocks = nn.ModuleList([ClassAttentionBlock(dim, num_heads, eps=eps)
                                         for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.neighbors = {14: neighbor_table(14), 6: neighbor_table(6)}

    def class_path(self, x: torch.Tensor, record: Record = None, prefix: str = "") -> torch.Tensor:
        c = self.cls_token.expand(x.shape[0], -1, -1)
        for j, blk in enumerate(self.cls_blocks):
            c = blk(x, c, record, f"{prefix}cls_blocks.{j}/")
        return c

    def forward(self, x: torch.Tensor, loc: bool, record: Record = None) -> torch.Tensor:
        b, n, d = x.shape
        g = int(round(math.sqrt(n)))
        assert n in (196, 36) and g * g == n, f"SelfPatchHead supports N = 196 or 36, got {n}"
        g2 = self.class_path(x, record, "global/")
        if loc:
            nb = self.neighbors[g]                                             # (N, 8)
            xn = F.normalize(x, p=2, dim=-1, eps=1e-12)
            sim = (xn.unsqueeze(2) * xn[:, nb]).sum(dim=-1)                   # (B, N, 8)
            _put(record, "similarity", sim)
            topk = sim.topk(self.k_num, dim=-1, largest=True, sorted=True).indices  # (B, N, k)
            _put(record, "topk", topk)
            idx = torch.gather(nb.unsqueeze(0).expand(b, -1, -1), 2, topk)    # (B, N, k) patch ids
            _put(record, "neighbor_index", idx)
            y = x[torch.arange(b).view(b, 1, 1), idx]                          # (B, N, k, D) raw
            y = y.reshape(b * n, self.k_num, d)
            l2 = self.class_path(y, record, "local/")                          # (B*N, 1, D)
            patches = l2.reshape(b, n, d)
        else:
            patches = x
        out = self.norm(torch.cat([g2, patches], dim=1))                       # (B, 1+N, D)
        _put(record, "ca_out", out)
        return out


class SelfPatchModel(nn.Module):
    """Keys `backbone.*` (no cls_token, pos_embed (1,N0,D), no final norm), `ca_head.*`,
    `c_head.*`, `p_head.*` (spec §3.10)."""

    def __init__(self, backbone: ReferenceViT, ca_head: SelfPatchHead, c_head: DINOHead,
                 p_head: DINOHead):
        super().__init__()
        assert not backbone.has_cls and not backbone.final_norm
        self.backbone = backbone
        self.ca_head = ca_head
        self.c_head = c_head
        self.p_head = p_head

    def forward_group(self, x: torch.Tensor, loc: bool, record: Record = None):
        """One resolution group (crops concatenated on the batch axis). Returns (cls logits
        (nB, K), patch logits (nB, N, K_p))."""
        tokens = self.backbone(x)                                              # (nB, N, D) raw
        _put(record, "tokens", tokens)
        out = self.ca_head(tokens, loc, record)
        cls_logits = self.c_head(out[:, 0])
        patch_logits = self.p_head(out[:, 1:])
        return cls_logits, patch_logits


def selfpatch_forward(model: SelfPatchModel, crops: Sequence[torch.Tensor], loc: bool,
                      records: Optional[List[Dict[str, torch.Tensor]]] = None):
    """Run every resolution group and split back per crop. Returns lists (per crop) of cls
    logits (B, K) and patch logits (B, N_v, K_p); `records[v]` gets the crop-v slices."""
    cls_out: List[torch.Tensor] = []
    pat_out: List[torch.Tensor] = []
    for s, e in resolution_groups(crops):
        rec: Dict[str, torch.Tensor] = {}
        c, p = model.forward_group(torch.cat(list(crops[s:e]), dim=0), loc, rec)
        n_crops = e - s
        cls_out += list(c.chunk(n_crops))
        pat_out += list(p.chunk(n_crops))
        if records is not None:
            for j in range(n_crops):
                sliced = {}
                for k, val in rec.items():
                    if val.shape[0] == c.shape[0]:                   # batch-major tensors
                        sliced[k] = val.chunk(n_crops)[j]
                sliced["cls_logits"] = c.chunk(n_crops)[j]
                sliced["patch_logits"] = p.chunk(n_crops)[j]
                records.append(sliced)
    return cls_out, pat_out


def _cross_entropy_soft(p: torch.Tensor, logits_over_temp: torch.Tensor) -> torch.Tensor:
    return torch.sum(-p * F.log_softmax(logits_over_temp, dim=-1), dim=-1)


def selfpatch_loss(s_cls: Sequence[torch.Tensor], s_pat: Sequence[torch.Tensor],
                   t_cls: Sequence[torch.Tensor], t_pat: Sequence[torch.Tensor],
                   center: torch.Tensor, patch_center: torch.Tensor, student_temp: float,
                   teacher_temp: float, center_momentum: float, patch_weight: float = 0.1):
    """Spec §3.6. Per-crop lists: cls (B, K), patch (B, N_v, K_p). Returns a dict with loss,
    loss_cls, loss_patch, cls_terms (2(V-1)), patch_terms (V), center_after, patch_center_after."""
    n_crops = len(s_cls)
    cls_terms, patch_terms = [], []
    total_cls = total_pat = None
    for iq in range(n_crops):
        p_cls = F.softmax((t_cls[iq] - center) / teacher_temp, dim=-1).detach()
        p_pat = F.softmax((t_pat[iq] - patch_center) / teacher_temp, dim=-1).detach()
        # patch level: same crop only, mean over batch and tokens
        term = _cross_entropy_soft(p_pat, s_pat[iq] / student_temp).mean()
        patch_terms.append(term)
        total_pat = term if total_pat is None else total_pat + term
        if iq > 1:          # image level: only the 2 global teacher crops are targets
            continue
        for v in range(n_crops):
            if v == iq:
                continue
            term = _cross_entropy_soft(p_cls, s_cls[v] / student_temp).mean()
            cls_terms.append(term)
            total_cls = term if total_cls is None else total_cls + term
    loss_cls = total_cls / len(cls_terms)
    loss_patch = total_pat / len(patch_terms)
    loss = loss_cls + patch_weight * loss_patch
    with torch.no_grad():
        all_cls = torch.cat(list(t_cls), dim=0)                                # (V B, K)
        all_pat = torch.cat([t.reshape(-1, t.shape[-1]) for t in t_pat], dim=0)  # (sum B N_v, K_p)
        c_new = center * center_momentum + (all_cls.sum(0, keepdim=True) / all_cls.shape[0]) * (1 - center_momentum)
        cp_new = patch_center * center_momentum + (all_pat.sum(0, keepdim=True) / all_pat.shape[0]) * (1 - center_momentum)
    return dict(loss=loss, loss_cls=loss_cls, loss_patch=loss_patch, cls_terms=cls_terms,
                patch_terms=patch_terms, center_after=c_new, patch_center_after=cp_new)


# ----------------------------------------------------------------------------------------------
# MoCo v3 (spec §4)
# ----------------------------------------------------------------------------------------------

def moco_mlp(num_layers: int, input_dim: int, mlp_dim: int, output_dim: int,
             last_bn: bool = True) -> nn.Sequential:
    """Linear (no bias) [-> BN -> ReLU] per hidden layer; last: Linear (no bias) [-> BN(affine=False)].
    Keys for 3 layers: 0 (Linear) 1 (BN) 2 (ReLU) 3 4 5 6 7(BN no affine)."""
    layers: List[nn.Module] = []
    for layer in range(num_layers):
        d1 = input_dim if layer == 0 else mlp_dim
        d2 = output_dim if layer == num_layers - 1 else mlp_dim
        layers.append(nn.Linear(d1, d2, bias=False))
        if layer < num_layers - 1:
            layers.append(nn.BatchNorm1d(d2))          # momentum 0.1, eps 1e-5
            layers.append(nn.ReLU(inplace=False))
        elif last_bn:
            layers.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*layers)


def sincos_pos_table(grid: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(1, 1 + grid^2, dim) float32 fixed 2-D sin-cos table (computed in float64), class slot 0.
    Token t = r*grid + c gets [sin(r w), cos(r w), sin(c w), cos(c w)], w_j = T^(-j/q), q = dim/4."""
    assert dim % 4 == 0
    q = dim // 4
    omega = 1.0 / (temperature ** (torch.arange(q, dtype=torch.float64) / q))
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                                torch.arange(grid, dtype=torch.float64), indexing="ij")
    r = rows.reshape(-1, 1) * omega.view(1, -1)
    c = cols.reshape(-1, 1) * omega.view(1, -1)
    pe = torch.cat([torch.sin(r), torch.cos(r), torch.sin(c), torch.cos(c)], dim=1)
    table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), pe], dim=0)
    return table.unsqueeze(0).to(torch.float32)


def check_sincos_golden(table: torch.Tensor, grid: int, dim: int) -> None:
    """Spec §6.3 item 15: token (r=3, c=5): first quarter sin(3 w), third quarter sin(5 w)."""
    q = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(q, dtype=torch.float64) / q))
    row = table[0, 1 + 3 * grid + 5].double()
    assert torch.allclose(row[:q], torch.sin(3 * omega), atol=1e-7)
    assert torch.allclose(row[q:2 * q], torch.cos(3 * omega), atol=1e-7)
    assert torch.allclose(row[2 * q:3 * q], torch.sin(5 * omega), atol=1e-7)
    assert torch.allclose(row[3 * q:], torch.cos(5 * omega), atol=1e-7)
    assert torch.all(table[0, 0] == 0)


class MoCoViT(ReferenceViT):
    """MoCo v3 ViT: DINO-layout backbone (cls token, final LN) whose `head` is the projector.
    Fixed sin-cos pos_embed and the patch projection are frozen (requires_grad False)."""

    def __init__(self, img_size: int, patch_size: int, embed_dim: int, depth: int,
                 num_heads: int, dim: int, mlp_dim: int):
        super().__init__(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim,
                         depth=depth, num_heads=num_heads, has_cls=True, final_norm=True)
        grid = img_size // patch_size
        with torch.no_grad():
            self.pos_embed.copy_(sincos_pos_table(grid, embed_dim))
        self.pos_embed.requires_grad_(False)
        for p in self.patch_embed.parameters():
            p.requires_grad_(False)
        self.head = moco_mlp(3, embed_dim, mlp_dim, dim, last_bn=True)

    def forward(self, x: torch.Tensor, record: Record = None) -> torch.Tensor:
        assert x.shape[-1] == self.img_size and x.shape[-2] == self.img_size, "no interpolation"
        return self.head(super().forward(x, record))


class MoCoV3(nn.Module):
    """`base_encoder`, `momentum_encoder`, `predictor` (keys without the DDP `module.` prefix)."""

    def __init__(self, base_encoder: MoCoViT, momentum_encoder: MoCoViT, dim: int,
                 mlp_dim: int, T: float):
        super().__init__()
        self.T = T
        self.base_encoder = base_encoder
        self.momentum_encoder = momentum_encoder
        self.predictor = moco_mlp(2, dim, mlp_dim, dim, last_bn=True)
        for p in self.momentum_encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def momentum_update_(self, m: float) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q over all parameters (incl. frozen); no buffers."""
        for pb, pm in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            pm.copy_(pm * m + pb.detach() * (1.0 - m))

    def contrastive_loss(self, q: torch.Tensor, k: torch.Tensor, record: Record = None,
                         prefix: str = ""):
        q = F.normalize(q, p=2, dim=1, eps=1e-12)
        k = F.normalize(k, p=2, dim=1, eps=1e-12)
        logits = (q @ k.t()) / self.T                        # world size 1: k gathered = k
        _put(record, prefix + "logits", logits)
        labels = torch.arange(logits.shape[0], dtype=torch.long)   # + B * rank, rank 0
        return F.cross_entropy(logits, labels) * (2 * self.T)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, m: float, record: Record = None):
        q1 = self.predictor(self.base_encoder(x1))
        q2 = self.predictor(self.base_encoder(x2))
        _put(record, "q1", q1)
        _put(record, "q2", q2)
        with torch.no_grad():
            self.momentum_update_(m)
            k1 = self.momentum_encoder(x1)
            k2 = self.momentum_encoder(x2)
        _put(record, "k1", k1)
        _put(record, "k2", k2)
        l12 = self.contrastive_loss(q1, k2, record, "ctr_12/")
        l21 = self.contrastive_loss(q2, k1, record, "ctr_21/")
        _put(record, "loss_12", l12)
        _put(record, "loss_21", l21)
        return l12 + l21


# ----------------------------------------------------------------------------------------------
# Fixture initialisation
# ----------------------------------------------------------------------------------------------

def ssl_fixture_init_(model: nn.Module, generator: Optional[torch.Generator] = None) -> None:
    """Same rule as reference_vit.fixture_init_, extended to the SSL modules, in named_parameters
    order: LayerNorm/BatchNorm weights 1 + N(0, 0.1); Linear/Conv weights and weight_v N(0, 0.05);
    weight_g = 1 (no draw); everything else (biases, cls tokens, pos_embed) N(0, 0.02)."""
    unit_weights, mat_weights, gains = set(), set(), set()
    for mname, mod in model.named_modules():
        prefix = mname + "." if mname else ""
        if isinstance(mod, (nn.LayerNorm, nn.BatchNorm1d)):
            unit_weights.add(prefix + "weight")
        elif isinstance(mod, (nn.Linear, nn.Conv2d)):
            mat_weights.add(prefix + "weight")
        elif isinstance(mod, WeightNormLinear):
            mat_weights.add(prefix + "weight_v")
            gains.add(prefix + "weight_g")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in gains:
                p.fill_(1.0)
                continue
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            if name in unit_weights:
                p.copy_(1.0 + 0.1 * noise)
            elif name in mat_weights:
                p.copy_(0.05 * noise)
            else:
                p.copy_(0.02 * noise)


INPUT_GRID = 1.0 / 8          # fixture inputs: N(0, 1) rounded to multiples of 1/8
WEIGHT_GRID = 2.0 ** -10      # fixture initial weights / buffers: multiples of 2^-10


def round_to_grid_(t: torch.Tensor, step: float) -> torch.Tensor:
    """Round in place to the nearest multiple of `step` (a power of two, so exact in float32).
    Used for fixture *inputs* and *initial weights* only: the values stay generic random numbers
    but have low entropy, so shuffle+gzip compresses them 2.5-4x; this keeps the multi-crop
    fixtures (two 224-px crops of batch 2 plus three state dicts) under 3 MB."""
    with torch.no_grad():
        t.copy_(torch.round(t / step) * step)
    return t


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------

def self_check() -> None:
    torch.manual_seed(0)
    # weight norm: our W = v * (g / ||v||) equals PyTorch's parametrisation (g, v -> weight)
    lin = WeightNormLinear(32, 128)
    with torch.no_grad():
        lin.weight_g.copy_(1 + 0.1 * torch.randn(128, 1))
    ref = torch.nn.utils.parametrizations.weight_norm(nn.Linear(32, 128, bias=False), dim=0)
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(lin.weight_g)
        ref.parametrizations.weight.original1.copy_(lin.weight_v)
    d = (ref.weight - lin.effective_weight()).abs().max().item()
    assert d < 1e-6, d
    print(f"weight norm vs torch parametrization: max abs diff {d:.2e}")
    head = DINOHead(48, 128, 64, 32, 3)
    keys = [k for k, _ in head.named_parameters()]
    assert keys == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight",
                    "mlp.4.bias", "last_layer.weight_g", "last_layer.weight_v"], keys
    assert not head.last_layer.weight_g.requires_grad
    w = head.last_layer.effective_weight()
    assert torch.allclose(w.norm(dim=1), torch.ones(128), atol=1e-6)
    # DINO loss: 2 (V - 1) pair terms
    s, t = torch.randn(10 * 3, 16), torch.randn(2 * 3, 16)
    _, terms, _ = dino_loss(s, t, torch.zeros(1, 16), 10, 0.1, 0.04, 0.9)
    assert len(terms) == 18
    # neighbour tables
    for g in (14, 6):
        check_golden_neighbors(neighbor_table(g), g)
    # sin-cos
    check_sincos_golden(sincos_pos_table(14, 48), 14, 48)
    # MoCo keys
    enc = MoCoViT(64, 16, 48, 2, 4, 16, 32)
    sd = list(enc.state_dict().keys())
    for k in ("head.0.weight", "head.1.running_var", "head.3.weight", "head.4.num_batches_tracked",
              "head.6.weight", "head.7.running_mean"):
        assert k in sd, k
    assert "head.7.weight" not in sd and "head.0.bias" not in sd
    print("reference_ssl self-check OK")


if __name__ == "__main__":
    self_check()
