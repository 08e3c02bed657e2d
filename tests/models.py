"""Test architectures, defined here (no torchvision, no downloads)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import eli5_nn


def plain_cnn(n_classes: int = 5, channels: int = 3) -> nn.Module:
    """conv → ReLU → conv → ReLU → max-pool → global average pool → linear."""
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_classes),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.down is None else self.down(x)
        return F.relu(out + identity)  # residual addition written in forward


class ResNetish(nn.Module):
    """A small ResNet: stem, residual stages with BatchNorm, global pool, linear."""

    def __init__(self, n_classes: int = 5, width: int = 8, channels: int = 3,
                 blocks: tuple[int, ...] = (1, 1, 1)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2 ** i
            layers = [BasicBlock(cin, cout, 1 if i == 0 else 2)]
            layers += [BasicBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class AdaptivePoolNet(nn.Module):
    """Adaptive pooling to a fixed 3×3 grid before the classifier."""

    def __init__(self, n_classes: int = 5, channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3),
                                      nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d((3, 3))
        self.head = nn.Linear(6 * 9, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


class TwoBranchNet(nn.Module):
    """A forward that is not a Sequential: two branches concatenated, functional ops."""

    def __init__(self, n_classes: int = 5, channels: int = 3) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, 4, 3, padding=1)
        self.b = nn.Conv2d(channels, 4, 5, padding=2)
        self.mix = nn.Conv2d(8, 8, 1)
        self.out = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1)
        h = F.relu(self.mix(h))
        return self.out(h.mean(dim=(2, 3)))


def mlp(n_classes: int = 5, channels: int = 3, size: int = 8) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 16), nn.ReLU(),
                         nn.Linear(16, n_classes))


def gap_linear(n_classes: int = 4, channels: int = 3, maps: int = 6) -> nn.Module:
    """conv → global-average-pool → linear: Grad-CAM has a closed form here."""
    return nn.Sequential(nn.Conv2d(channels, maps, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(maps, n_classes))


ARCHITECTURES = {
    "plain_cnn": plain_cnn,
    "resnetish": ResNetish,
    "adaptive_pool": AdaptivePoolNet,
    "two_branch": TwoBranchNet,
}


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


#: the methods that apply to image models (the text-only ones are tested in tests/text)
#: the methods for image models in general (not those that need attention layers)
IMAGE_METHODS = sorted(k for k, m in eli5_nn.METHODS.items() if m.image and not m.requires)
