"""The two parts of every activation and the rules that split operations between them.

Contextual decomposition (Murdoch et al. 2018; Singh et al., ICLR 2019) carries
each activation as ``relevant + irrelevant``: the part that comes from a chosen
region of the input and the part that comes from the rest. Linear maps act on
both parts; a bias (anything that does not depend on the input) is shared
between them in proportion to their magnitudes; nonlinearities are linearised
so that the two parts still add up to the activation exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import DecompositionError as DecompositionError  # re-export: old path

Act = Callable[[torch.Tensor], torch.Tensor]


class Parts:
    """An activation split as ``rel + irr`` (same shape, same dtype).

    ``fresh``: both tensors were just created by the rule that returned them and
    are shared with nothing else (no view, no other ``Parts``), so the next
    operation may overwrite them when it is their only user and no gradient is
    recorded (see :meth:`Context.owns`).

    ``shared``: instead of ``irr``, the activation itself when it is the same in
    every row of the batch, as one row (batch size 1). That is the case when one
    input is decomposed with many masks: ``rel + irr`` is the model's own
    activation at every step, whatever the mask. Rules that know it (linear
    maps, biases, ReLU-like activations, max pooling, row-wise reshapes) then
    work on the relevant part alone and on the one shared row; the irrelevant
    part is ``shared - rel`` and is only computed (once) when a rule reads
    ``irr``. The shared row is never overwritten.
    """

    __slots__ = ("rel", "_irr", "shared", "fresh")

    def __init__(self, rel: torch.Tensor, irr: torch.Tensor | None = None,
                 fresh: bool = False, *, shared: torch.Tensor | None = None) -> None:
        if irr is None and shared is None:
            raise TypeError("Parts needs the irrelevant part or the shared activation")
        self.rel = rel
        self._irr = irr
        # in the relevant part's memory layout, so that element-wise operations
        # between them, and views that hold for both, run as for two parts
        self.shared = None if irr is not None or shared is None else same_layout(shared, rel)
        self.fresh = fresh

    @property
    def irr(self) -> torch.Tensor:
        if self._irr is None:
            assert self.shared is not None
            # broadcast over the batch, in the relevant part's memory layout
            self._irr = torch.sub(self.shared, self.rel, out=torch.empty_like(self.rel))
        return self._irr

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors held (without computing the irrelevant part)."""
        held = (self.rel, self._irr, self.shared)
        return tuple(t for t in held if t is not None)

    def __repr__(self) -> str:
        second = "shared" if self._irr is None else "irr"
        return f"Parts(rel={self.rel!r}, {second}={getattr(self, second)!r})"

    def total(self) -> torch.Tensor:
        """The activation itself."""
        if self._irr is None and self.shared is not None:
            return self.shared.expand(self.rel.shape).clone(memory_format=torch.preserve_format)
        return self.rel + self.irr

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Parts:
        """Apply a linear, bias-free ``fn`` to both parts (to the relevant part and
        the shared row when ``fn`` acts row by row)."""
        if self.shared is not None and self._irr is None:
            rel = fn(self.rel)
            shared = rowwise(fn, self.shared, rel)
            if shared is not None:
                return Parts(rel, shared=shared)
            return Parts(rel, fn(self.irr))
        return Parts(fn(self.rel), fn(self.irr))


def rowwise(fn: Callable[[torch.Tensor], torch.Tensor], shared: torch.Tensor,
            out: torch.Tensor) -> torch.Tensor | None:
    """``fn`` of the shared row when that is one row of ``out`` (``fn`` of the
    whole batch): ``fn`` kept the batch axis first and sized the row like the
    batch's rows. ``None`` when it did not (``fn`` mixes or moves rows, or
    cannot take one row): the caller then applies ``fn`` to the whole batch."""
    try:
        one = fn(shared)
    except (RuntimeError, ValueError, IndexError, TypeError):
        return None
    if not isinstance(one, torch.Tensor) or one.dim() != out.dim() or one.dim() == 0 \
            or one.shape[0] != 1 or out.shape[0] <= 1 or one.shape[1:] != out.shape[1:] \
            or one.dtype != out.dtype:
        return None
    return one


def needs_grad(*tensors: object) -> bool:
    """Whether autograd records operations on any of ``tensors`` here (then no
    tensor that takes part may be overwritten)."""
    return torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


@dataclass
class Context:
    """What the rules need besides the parts: the batch size, and each row's
    share of the relevant region in the input (the last resort for ties).

    It also holds what makes one decomposition cheaper without changing its
    result: scratch buffers for full-size temporaries that live only inside one
    rule (reused from layer to layer instead of fresh memory each time), and
    ``consumable``, the argument the running rule may overwrite (set by the
    interpreter: a fresh value whose only user is this operation).
    """

    batch: int
    mask_share: torch.Tensor  # (batch,)
    consumable: Parts | None = field(default=None, repr=False)
    _scratch: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = field(
        default_factory=dict, repr=False)

    def owns(self, p: Parts) -> bool:
        """Whether the running rule may overwrite both tensors of ``p``."""
        return p is self.consumable and p.fresh and not needs_grad(*p.tensors())

    def scratch(self, slot: int, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor with ``like``'s shape, dtype, device and memory
        layout, valid until the rule that asked for it returns. Slots 0 and 1
        are two independent buffers; each grows to the largest size asked for.
        Never part of a result, never recorded by autograd."""
        n = like.numel()
        key = (slot, like.dtype, like.device)
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < n:
            self._scratch[key] = buf = torch.empty(n, dtype=like.dtype, device=like.device)
        flat = buf[:n]
        if like.is_contiguous():
            return flat.view(like.shape)
        if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last):
            b, c, h, w = like.shape
            return flat.view(b, h, w, c).permute(0, 3, 1, 2)
        return torch.empty_like(like)

    def total(self, p: Parts) -> torch.Tensor:
        """``rel + irr`` for use inside one rule only (a scratch buffer when no
        gradient is recorded)."""
        if p.shared is not None and not needs_grad(*p.tensors()):
            return self.scratch(0, p.rel).copy_(p.shared.expand(p.rel.shape))
        if needs_grad(p.rel, p.irr) or p.rel.shape != p.irr.shape \
                or p.rel.dtype != p.irr.dtype:
            return p.total()
        return torch.add(p.rel, p.irr, out=self.scratch(0, p.rel))

    def share(self, rel: torch.Tensor, irr: torch.Tensor) -> torch.Tensor:
        """Each row's relevant share of ``|rel| + |irr|``, broadcastable to ``rel``.

        Rows where both parts are zero fall back to the input mask's share. A
        tensor whose leading axis is not the batch gets one share overall.
        """
        if rel.dim() >= 1 and rel.shape[0] == self.batch:
            a = rel.detach().abs().reshape(self.batch, -1).sum(1)
            b = irr.detach().abs().reshape(self.batch, -1).sum(1)
            fallback = self.mask_share.to(a.dtype)
            shape = (self.batch,) + (1,) * (rel.dim() - 1)
        else:
            a, b = rel.detach().abs().sum(), irr.detach().abs().sum()
            fallback = self.mask_share.to(a.dtype).mean()
            shape = ()
        den = a + b
        ok = den > 0
        w = torch.where(ok, a / torch.where(ok, den, torch.ones_like(den)), fallback)
        return w.reshape(shape)


def split_bias(rel: torch.Tensor, irr: torch.Tensor, bias: torch.Tensor | float,
               cx: Context, *, fresh: bool = False) -> Parts:
    """Add ``bias`` to the parts in proportion to their magnitudes, element by element.

    ``w = |rel| / (|rel| + |irr|)``: the relevant part gets ``w * bias``, the
    irrelevant part the rest (the rule of Singh et al.'s ``acd``). Where both
    parts are zero the row's overall relevant share decides, so a full mask
    leaves nothing irrelevant and an ignored region gets nothing.

    ``fresh``: ``rel`` and ``irr`` are the caller's own new tensors, which may be
    overwritten when no gradient is recorded (fewer full-size temporaries: the
    parts of a conv layer's output are the largest tensors CD handles).
    """
    b = torch.as_tensor(bias, dtype=rel.dtype, device=rel.device)
    grad = needs_grad(rel, irr, b)
    if grad:
        a = rel.abs()
        den = irr.abs() + a
        w = a / den
    else:
        if rel.shape == irr.shape and rel.dtype == irr.dtype:
            # |rel| and |irr| live only inside this rule: reuse the scratch buffers
            a = torch.abs(rel, out=cx.scratch(0, rel))
            den = torch.abs(irr, out=cx.scratch(1, irr))
        else:
            a, den = rel.abs(), irr.abs()
        w = a.div_(den.add_(a))  # 0 / 0 = nan where both parts are zero, replaced below
    if den.numel() and bool(den.amin() <= 0):
        w = torch.where(den > 0, w, cx.share(rel, irr).to(rel.dtype))
    if fresh and not grad and torch.broadcast_shapes(rel.shape, b.shape) == rel.shape \
            and rel.dtype == irr.dtype == w.dtype:
        return Parts(rel.addcmul_(w, b), irr.add_(b).addcmul_(w, b, value=-1), fresh=True)
    return Parts(torch.addcmul(rel, w, b), torch.addcmul(irr + b, w, b, value=-1), fresh=True)


def split_bias_shared(rel: torch.Tensor, shared: torch.Tensor, bias: torch.Tensor | float,
                      cx: Context, *, own: bool = False) -> Parts | None:
    """:func:`split_bias` of parts whose sum is the one row ``shared`` in every
    row of ``rel``'s batch: the irrelevant part is ``shared - rel``, its
    magnitude taken straight into a scratch buffer, and only the relevant part
    gets its share of ``bias`` (the sum gets all of it, once, in the shared
    row). ``own``: ``rel`` is the caller's new tensor and is overwritten.

    ``None`` where that does not apply (a gradient is recorded, or ``bias``
    differs from row to row, so the sum is no longer shared)."""
    b = torch.as_tensor(bias, dtype=rel.dtype, device=rel.device)
    if needs_grad(rel, shared, b) or shared.dtype != rel.dtype \
            or torch.broadcast_shapes(rel.shape, b.shape) != rel.shape \
            or torch.broadcast_shapes(shared.shape, b.shape) != shared.shape:
        return None
    den = torch.sub(shared, rel, out=cx.scratch(1, rel)).abs_()  # |irr|
    a = torch.abs(rel, out=cx.scratch(0, rel))
    den.add_(a)
    # |rel| + |irr| is zero only where rel and the sum both are: look for such
    # places in the full batch only when the shared row has a zero
    if den.numel() and bool((shared == 0).any()) and bool(den.amin() <= 0):
        w = torch.where(den > 0, a.div_(den), cx.share(rel, shared - rel).to(rel.dtype))
    else:
        w = a.div_(den)
    out = rel.addcmul_(w, b) if own else torch.addcmul(rel, w, b)
    return Parts(out, shared=torch.add(shared, b, out=torch.empty_like(shared)), fresh=True)


def same_layout(one: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``one`` (a shared row) in ``like``'s memory layout, so that element-wise
    operations between them and the gathers of max pooling run on matching
    memory (a copy of the one row where the layouts differ)."""
    if like.dim() == 4 and _channels_last(like) and not _channels_last(one):
        return one.contiguous(memory_format=torch.channels_last)
    if not like.is_contiguous() or one.is_contiguous():
        return one
    return one.contiguous()


def _channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def add_bias(cx: Context, p: Parts, bias: torch.Tensor | float, *, fresh: bool = False
             ) -> Parts:
    """``p`` plus ``bias``, shared between the parts (:func:`split_bias`);
    ``fresh``: ``p``'s tensors are the caller's own new ones."""
    if p.shared is not None and p._irr is None:
        out = split_bias_shared(p.rel, p.shared, bias, cx, own=fresh)
        if out is not None:
            return out
    return split_bias(p.rel, p.irr, bias, cx, fresh=fresh)


def relu_like(p: Parts, act: Act, cx: Context | None = None, act_: Act | None = None
              ) -> Parts:
    """Activations with ``f(0) = 0`` (ReLU, LeakyReLU...): ``rel -> f(rel)``,
    ``irr -> f(rel + irr) - f(rel)`` (Singh et al.).

    ``act_``: the same activation in place. With it, parts the rule owns
    (``cx.owns(p)``) are overwritten and no memory is taken; otherwise
    ``rel + irr`` goes to a scratch buffer when no gradient is recorded.
    """
    if cx is not None and p.shared is not None and not needs_grad(*p.tensors()):
        # f(rel) and f of the one shared row; the irrelevant part stays implied
        own = act_ is not None and cx.owns(p)
        return Parts(act_(p.rel) if own and act_ is not None else act(p.rel),
                     shared=act(p.shared), fresh=True)
    if cx is None or needs_grad(p.rel, p.irr):
        rel = act(p.rel)
        full = act(p.total())
        if needs_grad(full):
            return Parts(rel, full - rel, fresh=True)
        return Parts(rel, full.sub_(rel), fresh=True)  # act's output is its own new tensor
    if act_ is not None and cx.owns(p) and p.rel.shape == p.irr.shape:
        full = act_(p.irr.add_(p.rel))  # irr becomes rel + irr, then f(rel + irr)
        rel = act_(p.rel)
        return Parts(rel, full.sub_(rel), fresh=True)
    rel = act(p.rel)
    total = cx.total(p)  # a scratch buffer (or a new tensor): ours to overwrite
    if act_ is not None:
        return Parts(rel, torch.sub(act_(total), rel), fresh=True)
    return Parts(rel, act(total).sub_(rel), fresh=True)


def shapley_two(p: Parts, act: Act, cx: Context) -> Parts:
    """Tanh, sigmoid: each part's average marginal effect over the two orders
    (Murdoch et al.'s linearisation); ``f(0)`` is shared like a bias."""
    zero = act(torch.zeros((), dtype=p.rel.dtype, device=p.rel.device))
    full = act(p.total())
    fr, fi = act(p.rel), act(p.irr)
    rel = 0.5 * ((fr - zero) + (full - fi))
    irr = 0.5 * ((fi - zero) + (full - fr))
    return split_bias(rel, irr, zero, cx, fresh=True)


def shapley_three(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, act: Act
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``act(a + b + c)`` split into an ``a`` part, a ``b`` part and ``act(c)``,
    with ``c`` a bias (the gate rule of the LSTM decomposition)."""
    fc, fabc = act(c), act(a + b + c)
    fac, fbc = act(a + c), act(b + c)
    return 0.5 * ((fac - fc) + (fabc - fbc)), 0.5 * ((fbc - fc) + (fabc - fac)), fc


def product(x: Parts, y: Parts, mul: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
            ) -> Parts:
    """``x * y`` (or a bilinear ``mul``): relevant times relevant is relevant,
    every term with an irrelevant factor is irrelevant."""
    rel = mul(x.rel, y.rel)
    return Parts(rel, mul(x.total(), y.total()) - rel)


def gate_product(g: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                 v: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(g_r + g_i + g_b) * (v_r + v_i + v_b)`` as (relevant, irrelevant, bias):
    relevant with relevant or bias is relevant, anything with an irrelevant
    factor is irrelevant, bias times bias stays a bias (Murdoch et al.)."""
    gr, gi, gb = g
    vr, vi, vb = v
    rel = gr * (vr + vb) + gb * vr
    irr = gi * (vr + vi + vb) + (gr + gb) * vi
    return rel, irr, gb * vb


def select_max(p: Parts, dims: tuple[int, ...], keepdim: bool) -> tuple[Parts, torch.Tensor]:
    """Max over ``dims``: each part's value at the position where the whole
    activation wins; returns the parts and the winning (flattened) indices."""
    total = p.total()
    nd = total.dim()
    dims = tuple(sorted(d % nd for d in dims))
    rest = [d for d in range(nd) if d not in dims]
    order = rest + list(dims)

    def flat(t: torch.Tensor) -> torch.Tensor:
        t = t.permute(order)
        return t.reshape(*t.shape[: len(rest)], -1)

    idx = flat(total).argmax(dim=-1, keepdim=True)
    rel = flat(p.rel).gather(-1, idx).squeeze(-1)
    irr = flat(p.irr).gather(-1, idx).squeeze(-1)
    index = idx.squeeze(-1)
    if keepdim:
        for d in dims:
            rel, irr, index = rel.unsqueeze(d), irr.unsqueeze(d), index.unsqueeze(d)
    return Parts(rel, irr), index


def gather_spatial(p: Parts, indices: torch.Tensor) -> Parts:
    """Max pooling: take both parts at the winners' flattened spatial ``indices``
    (as ``max_pool*d(..., return_indices=True)`` gives them). For parts with a
    shared sum, ``indices`` may be the shared row's (batch size 1): the winners
    of the whole activation are the same in every row."""
    if p.shared is not None and indices.shape[0] == 1 < p.rel.shape[0]:
        return Parts(_gather(p.rel, indices), shared=_gather(p.shared, indices), fresh=True)
    return Parts(_gather(p.rel, indices), _gather(p.irr, indices), fresh=True)


def _gather(t: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``t`` at the flattened spatial ``indices`` (batch size ``t``'s or 1, then
    the same in every row; see :func:`gather_spatial`)."""
    n, c = t.shape[0], indices.shape[1]
    if indices.dim() == 4 and _channels_last(t):
        # channels-last (N, H, W, C) memory: gather along the spatial axis of an
        # (N, H*W, C) view; the result keeps that layout and nothing is copied
        nhwc = indices.permute(0, 2, 3, 1)
        idx = nhwc.reshape(indices.shape[0], -1, c).expand(n, -1, -1)
        out = t.permute(0, 2, 3, 1).reshape(n, -1, c).gather(1, idx)
        return out.reshape(n, *nhwc.shape[1:]).permute(0, 3, 1, 2)
    idx = indices.reshape(indices.shape[0], c, -1).expand(n, -1, -1)
    return t.reshape(n, c, -1).gather(2, idx).reshape(n, *indices.shape[1:])
