"""Look-alikes of timm's ``VisionTransformer`` and ``VisionTransformerDistilled`` (DeiT).

timm does not install beside the test environment's CPU torch without
torchvision, so eli5-nn reads timm models by duck typing. These modules carry
the same attributes and module names as timm's (``patch_embed.grid_size``,
``num_prefix_tokens``, ``cls_token``, ``dist_token``, ``blocks[i].norm1`` /
``.attn`` / ``.mlp``, ``norm``, ``global_pool``, ``head``, ``head_dist``) and
compute what timm computes (pre-norm blocks, fused attention that returns no
weights unless ``fused_attn`` is off), written here from the ViT and DeiT
papers rather than copied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, dim, patch_size, patch_size)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = True
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = self.attn_drop((q * self.scale @ k.transpose(-2, -1)).softmax(dim=-1))
            x = attn @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 2 * dim)
        self.ls2 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """timm's ViT: class token, learned positions, pre-norm blocks, head on the class token."""

    def __init__(
        self, img_size: int = 32, patch_size: int = 8, in_chans: int = 3, num_classes: int = 5,
        embed_dim: int = 32, depth: int = 2, num_heads: int = 2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.global_pool = "token"
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.has_class_token = True
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.reg_token = None
        n = self.patch_embed.num_patches + self._extra_tokens()
        self.pos_embed = nn.Parameter(torch.randn(1, n, embed_dim) * 0.02)
        self.pos_drop = nn.Dropout(0.0)
        self.norm_pre = nn.Identity()
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.fc_norm = nn.Identity()
        self.head_drop = nn.Dropout(0.0)
        self.head = nn.Linear(embed_dim, num_classes)

    def _extra_tokens(self) -> int:
        return 1

    def _prefix(self, b: int) -> list[torch.Tensor]:
        return [self.cls_token.expand(b, -1, -1)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([*self._prefix(x.shape[0]), x], dim=1) + self.pos_embed
        x = self.norm_pre(self.pos_drop(x))
        return self.norm(self.blocks(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == "token":
            x = x[:, 0]
        else:
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        return self.head(self.head_drop(self.fc_norm(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VisionTransformerDistilled(VisionTransformer):
    """timm's DeiT with a distillation token: two heads, averaged at inference."""

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.num_prefix_tokens = 2
        self.dist_token = nn.Parameter(torch.randn(1, 1, self.embed_dim) * 0.02)
        self.head_dist = nn.Linear(self.embed_dim, self.num_classes)

    def _extra_tokens(self) -> int:
        return 2

    def _prefix(self, b: int) -> list[torch.Tensor]:
        return [self.cls_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1)]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


def vit_tiny() -> VisionTransformer:
    """A ViT over a 4×4 grid of 8×8 patches of a 32×32 image."""
    return VisionTransformer()


def deit_tiny() -> VisionTransformerDistilled:
    """A distilled DeiT over the same grid."""
    return VisionTransformerDistilled()
