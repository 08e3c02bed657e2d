"""Explanation penalties for training: CDEP and "Right for the Right Reasons".

Both return a scalar tensor to add to the loss in a plain training loop::

    for x, y, mask in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) + lam * cdep_penalty(model, x, mask)
        loss.backward()
        opt.step()

Inputs and masks are moved to the model's device; nothing assumes a device.
For text models ``x`` is token ids (N, T) and ``mask`` one value per token.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..decomposition import contextual_decomposition
from ..decomposition.cd import _model_device


def _tensors(model: nn.Module, x: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (a batch, batch axis first), got "
                        f"{type(x).__name__}")
    device = _model_device(model, x)
    x = x.to(device)
    m = torch.as_tensor(mask, device=device)
    if m.shape == x.shape[1:]:
        m = m.unsqueeze(0).expand(x.shape)
    if m.shape != x.shape:
        raise ValueError(
            f"mask must have the input's shape {tuple(x.shape)} (or that shape without the "
            f"batch axis, shared by every input); got {tuple(m.shape)}. For token ids: one "
            "value per token."
        )
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return x, m.to(dtype)


def cdep_penalty(model: nn.Module, x: torch.Tensor, mask: Any,
                 targets: torch.Tensor | None = None) -> torch.Tensor:
    """CDEP (Rieger et al., ICML 2020): how much of the prediction the masked region explains.

    The masked region is the relevant part of a contextual decomposition
    (:func:`eli5_nn.decomposition.contextual_decomposition`); for every
    output score the two parts go through a softmax, and the penalty is the
    mean share of the relevant (masked) part:
    ``mean_{n,c} exp(rel_nc) / (exp(rel_nc) + exp(irr_nc))``.

    Parameters
    ----------
    model : torch.nn.Module
        The network being trained (in whatever mode it is in).
    x : torch.Tensor
        A batch of inputs (or token ids).
    mask : tensor or array
        The forbidden region: the input's shape, or that shape without the
        batch axis (the same region for every input); token ids: one value
        per token.
    targets : torch.Tensor, optional
        (N,) class indices: penalise only those scores; default every class.

    Returns
    -------
    torch.Tensor
        A scalar that backpropagates into the weights.
    """
    x, m = _tensors(model, x, mask)
    rel, irr = contextual_decomposition(model, x, m)
    share = torch.softmax(torch.stack([rel, irr], dim=-1), dim=-1)[..., 0]
    if targets is not None:
        t = torch.as_tensor(targets, device=share.device).long().reshape(-1, 1)
        if t.shape[0] != share.shape[0]:
            raise ValueError(f"targets must hold one class per input ({share.shape[0]}), got "
                             f"{t.shape[0]}")
        share = share.gather(1, t)
    return share.mean()


def _embedding(model: nn.Module, embedding: nn.Module | None) -> nn.Module:
    if embedding is not None:
        return embedding
    for mod in model.modules():
        if isinstance(mod, nn.Embedding):
            return mod
    raise ValueError("token ids need an nn.Embedding in the model (or pass embedding=)")


def gradient_penalty(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, mask: Any,
                     *, embedding: nn.Module | None = None) -> torch.Tensor:
    """"Right for the Right Reasons" (Ross et al., IJCAI 2017): squared input
    gradients of the log-probabilities inside the mask.

    ``sum_d (mask_d * d/dx_d sum_k log p_k(x))^2``, averaged over the batch;
    with ``y`` given, the log-probability of class ``y`` instead of the sum
    over classes. For token ids the gradient is taken at the embedding output
    and its squares are summed over the embedding dimensions of each token.
    An empty mask gives exactly zero. The graph is kept (double
    backpropagation), so the penalty trains the weights.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits.
    x : torch.Tensor
        A batch of inputs or token ids; it is not modified.
    y : torch.Tensor or None
        (N,) labels, or None for the sum over all classes (the paper's form).
    mask : tensor or array
        Where gradients are penalised (input's shape, or without batch axis).
    embedding : torch.nn.Module, optional
        Text: the embedding layer (default: the model's first ``nn.Embedding``).

    Returns
    -------
    torch.Tensor
        A scalar that backpropagates into the weights.
    """
    x, m = _tensors(model, x, mask)
    if x.is_floating_point():
        xi = x.detach().requires_grad_(True)
        logp = F.log_softmax(model(xi), dim=1)
        wrt = xi
        store = None
    else:
        emb = _embedding(model, embedding)
        store_list: list[torch.Tensor] = []

        def hook(mod: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
            if not out.requires_grad:
                out = out.detach().requires_grad_(True)
            store_list.append(out)
            return out

        handle = emb.register_forward_hook(hook)
        try:
            logp = F.log_softmax(model(x), dim=1)
        finally:
            handle.remove()
        if len(store_list) != 1:
            raise ValueError("the embedding layer must be called once in the forward pass")
        wrt = store_list[0]
        store = wrt
    if y is None:
        objective = logp.sum()
    else:
        t = torch.as_tensor(y, device=logp.device).long().reshape(-1, 1)
        objective = logp.gather(1, t).sum()
    (grad,) = torch.autograd.grad(objective, wrt, create_graph=True)
    if store is not None:
        sq = grad.pow(2).sum(-1) * m.pow(2)
    else:
        sq = (grad * m).pow(2)
    return sq.reshape(sq.shape[0], -1).sum(1).mean()
