"""The conformance suite on PyTorch models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from eli5_nn.demo_models import TextCNN
from tests import models
from tests.conformance.cases import TEXT_FAMILIES
from tests.conformance.suite import ConformanceSuite, Harness, generate, token_docs
from tests.text.models import BiLSTM, TinyTransformer

pytest_generate_tests = generate

SIZE, LENGTH, VOCAB = 12, 7, 50


def _seeded(make: Any) -> Any:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return models.randomize_bn(make()).eval()

    return build


class TorchHarness(Harness):
    framework = "torch"
    families: ClassVar[dict[str, Any]] = {
        # BatchNorm, residual additions written in forward, global pooling
        "image": _seeded(lambda: models.ResNetish(width=4, blocks=(1, 1))),
        "mlp": _seeded(lambda: models.mlp(size=SIZE)),
        "text-cnn": _seeded(lambda: TextCNN(vocab=VOCAB, dim=8, channels=8)),
        "text-rnn": _seeded(lambda: BiLSTM(vocab=VOCAB, dim=8, hidden=6, layers=1)),
        "text-attention": _seeded(lambda: TinyTransformer(vocab=VOCAB, dim=8)),
    }

    def docs(self, family: str, n: int = 3) -> Any:
        if family in TEXT_FAMILIES:
            return token_docs(n, VOCAB, LENGTH, seed=5)
        rng = np.random.default_rng(5)
        return torch.as_tensor(rng.random((n, 3, SIZE, SIZE)).astype(np.float32))

    def baseline(self, family: str, docs: Any) -> Any:
        return torch.zeros_like(docs) if isinstance(docs, torch.Tensor) else super().baseline(
            family, docs)

    def assert_input_untouched(self, docs: Any, before: Any) -> None:
        if isinstance(docs, torch.Tensor):
            assert torch.equal(docs, before)
            assert not docs.requires_grad and docs.grad is None
        else:
            super().assert_input_untouched(docs, before)

    def disturb(self, model: nn.Module) -> None:
        model.train()
        children = list(model.children())
        children[0].train(False)  # mixed modes are restored one by one
        params = list(model.parameters())
        params[0].requires_grad_(False)  # a frozen layer stays frozen
        for p in params[1:]:
            p.grad = torch.full_like(p, 0.5)  # existing .grad must survive

    def snapshot(self, model: nn.Module) -> dict[str, Any]:
        return {
            "modes": [m.training for m in model.modules()],
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            "state": {k: v.clone() for k, v in model.state_dict().items()},
            "hooks": [
                (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                 len(getattr(m, "_backward_pre_hooks", None) or {}),
                 len(getattr(m, "_full_backward_hooks", None) or {}))
                for m in model.modules()
            ],
            "n_modules": len(list(model.modules())),
        }

    def assert_same(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        for key in ("modes", "requires_grad", "hooks", "n_modules"):
            assert a[key] == b[key], key
        for ga, gb in zip(a["grads"], b["grads"], strict=True):
            assert (ga is None) == (gb is None)
            if ga is not None:
                assert torch.equal(ga, gb)
        for k in a["state"]:
            assert torch.equal(a["state"][k], b["state"][k]), k

    @contextmanager
    def broken(self, model: nn.Module) -> Iterator[None]:
        def boom(*_args: Any) -> None:
            raise RuntimeError("kaboom")

        last = [m for m in model.modules() if not list(m.children())][-1]
        handle = last.register_forward_hook(boom)
        try:
            yield
        finally:
            handle.remove()


class TestTorchConformance(ConformanceSuite):
    harness = TorchHarness()
