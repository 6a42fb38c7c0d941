"""Tokens-to-Token ViT (Yuan et al. 2021), the T2T-ViT-t-14 variant.

Paper: "Tokens-to-Token ViT: Training Vision Transformers from Scratch on ImageNet", ICCV 2021,
https://arxiv.org/abs/2101.11986; reference implementation: github.com/yitu-opensource/T2T-ViT.

The "t" variants use small transformer layers (not Performers) inside the tokens-to-token
module. That module replaces ViT's 16x16 patch embedding with three overlapping soft splits
(``nn.Unfold``; strides 4, 2, 2, hence a total downsampling of 16) with a one-head token
transformer after each of the first two, so neighbouring pixels are aggregated progressively
and each token models local structure before the body sees it.
"""
from __future__ import annotations

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

# Product of the three soft-split strides (4, 2, 2)
T2T_STRIDE = 16


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position table of shape (1, num_positions, dim) (Vaswani et al. 2017).

    Even channels get sin, odd channels cos, of position / 10000^(2*(c//2)/dim).
    """
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    pair = torch.arange(dim, dtype=torch.float64) // 2
    angle = position / torch.pow(10000.0, 2.0 * pair / dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float().unsqueeze(0)


class TokenAttention(nn.Module):
    """Single-purpose attention of the T2T module: it changes the token width ``dim -> out_dim``.

    Because input and output widths differ, the usual residual ``x + attn(x)`` is impossible;
    the value projection ``v`` (already ``out_dim`` wide) serves as the skip connection instead.
    """

    def __init__(self, dim: int, out_dim: int, num_heads: int = 1, qkv_bias: bool = False) -> None:
        super().__init__()
        if out_dim % num_heads:
            raise ValueError(f"out_dim {out_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.out_dim = out_dim
        # Quirk kept from the official code: the scale uses the INPUT width (e.g. 3*7*7 = 147),
        # not the per-head width of q and k (out_dim // num_heads = 64). Changing it would alter
        # the attention temperature relative to the published model.
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, out_dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        head_dim = self.out_dim // self.num_heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, self.out_dim)
        out = self.proj(out)
        # v is (b, heads, n, head_dim); merge heads the same way as ``out`` for the skip
        return v.transpose(1, 2).reshape(b, n, self.out_dim) + out


class TokenTransformer(nn.Module):
    """Transformer layer of the T2T module: ``x = attn(norm1(x)); x = x + mlp(norm2(x))``.

    The first sub-layer has no outer residual (see :class:`TokenAttention`), as in the paper code.
    """

    def __init__(self, dim: int, out_dim: int, num_heads: int = 1, mlp_ratio: float = 1.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TokenAttention(dim, out_dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(out_dim)
        self.mlp = Mlp(in_features=out_dim, hidden_features=int(out_dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(self.norm1(x))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class T2TModule(nn.Module):
    """Tokens-to-token embedding: image (B, C, H, W) -> tokens (B, H/16 * W/16, embed_dim)."""

    def __init__(self, in_chans: int = 3, embed_dim: int = 384, token_dim: int = 64) -> None:
        super().__init__()
        self.soft_split0 = nn.Unfold(kernel_size=7, stride=4, padding=2)
        self.soft_split1 = nn.Unfold(kernel_size=3, stride=2, padding=1)
        self.soft_split2 = nn.Unfold(kernel_size=3, stride=2, padding=1)
        self.attention1 = TokenTransformer(in_chans * 7 * 7, token_dim, num_heads=1, mlp_ratio=1.0)
        self.attention2 = TokenTransformer(token_dim * 3 * 3, token_dim, num_heads=1, mlp_ratio=1.0)
        self.project = nn.Linear(token_dim * 3 * 3, embed_dim)

    @staticmethod
    def _unfolded_size(size: int, unfold: nn.Unfold) -> int:
        return (size + 2 * unfold.padding - unfold.kernel_size) // unfold.stride + 1

    @staticmethod
    def _restructurize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Tokens (B, h*w, C) back to a feature map (B, C, h, w) for the next soft split."""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Track the grid size explicitly: the reference takes sqrt of the token count, which
        # only works for square inputs
        h, w = (self._unfolded_size(s, self.soft_split0) for s in x.shape[-2:])
        x = self.attention1(self.soft_split0(x).transpose(1, 2))
        x = self._restructurize(x, h, w)
        h, w = (self._unfolded_size(s, self.soft_split1) for s in (h, w))
        x = self.attention2(self.soft_split1(x).transpose(1, 2))
        x = self._restructurize(x, h, w)
        return self.project(self.soft_split2(x).transpose(1, 2))


class T2TViT(nn.Module):
    """Tokens-to-Token ViT: T2T embedding, cls token, fixed sinusoidal positions, ViT body."""

    def __init__(self, *, img_size: int = 224, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 384, depth: int = 14, num_heads: int = 6, mlp_ratio: float = 3.0,
                 token_dim: int = 64, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if img_size <= 0 or img_size % T2T_STRIDE:
            raise ValueError(
                f"img_size must be a positive multiple of {T2T_STRIDE} (the tokens-to-token "
                f"module downsamples by 4*2*2), got {img_size}")
        self.img_size = img_size
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.grid_size = img_size // T2T_STRIDE
        self.num_patches = self.grid_size ** 2

        self.tokens_to_token = T2TModule(in_chans=in_chans, embed_dim=embed_dim, token_dim=token_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # The official code stores this as a Parameter with requires_grad=False; a buffer is the
        # same tensor without counting as a parameter or being handed to the optimizer.
        self.register_buffer("pos_embed", sinusoid_position_table(self.num_patches + 1, embed_dim))

        drop_path = torch.linspace(0, drop_path_rate, depth).tolist()
        # nn.LayerNorm (eps 1e-5) as in the reference; timm's default LayerNorm uses eps 1e-6
        self.blocks = nn.Sequential(*[
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=False,
                  drop_path=drop_path[i], norm_layer=nn.LayerNorm)
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameter names that optimizers should exempt from weight decay."""
        return {"cls_token"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized token sequence (B, 1 + num_patches, embed_dim), cls token first."""
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            # The fixed position table has one row per token of the size built for
            raise ValueError(f"expected {self.img_size}x{self.img_size} input, "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        x = self.tokens_to_token(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) from the cls token."""
        return self.head(self.forward_features(x)[:, 0])


def t2t_vit_t_14(num_classes: int, img_size: int = 224, drop_path_rate: float = 0.0) -> T2TViT:
    """T2T-ViT-t-14: embed 384, depth 14, 6 heads, MLP ratio 3, token_dim 64 (21.5M at 224 px)."""
    return T2TViT(img_size=img_size, num_classes=num_classes, embed_dim=384, depth=14,
                  num_heads=6, mlp_ratio=3.0, token_dim=64, drop_path_rate=drop_path_rate)
