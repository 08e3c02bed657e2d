"""Contextual decomposition of ``nn.LSTM`` and ``nn.GRU`` (any number of layers,
uni- or bidirectional, batch first or not).

LSTM (Murdoch et al. 2018, eq. 8-13): each gate's pre-activation has a
relevant part, an irrelevant part and a bias; the gate is split by
:func:`~eli5_nn.decomposition.parts.shapley_three`, products of gates by
:func:`~eli5_nn.decomposition.parts.gate_product`, the output gate multiplies
the split ``tanh`` of the cell. The bias-times-bias term of a step belongs to
the token read at that step: it goes to the relevant part in proportion to
that step's input (all of it for a token inside the region, none outside, as
in the reference's phrase rule). GRU follows the same rules for its reset,
update and candidate terms.
"""

from __future__ import annotations

import torch
from torch import nn

from .parts import Context, DecompositionError, Parts, gate_product, shapley_three

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _step_share(xr: torch.Tensor, xi: torch.Tensor, cx: Context) -> torch.Tensor:
    """(N, 1): how much of step ``t``'s input is relevant."""
    a, b = xr.detach().abs().sum(-1), xi.detach().abs().sum(-1)
    den = a + b
    ok = den > 0
    w = torch.where(ok, a / torch.where(ok, den, torch.ones_like(den)),
                    cx.mask_share.to(a.dtype))
    return w.unsqueeze(-1)


def _initial(state: torch.Tensor | None, index: int, n: int, hidden: int, like: torch.Tensor,
             cx: Context) -> Parts:
    if state is None:
        z = like.new_zeros(n, hidden)
        return Parts(z, z)
    s = state[index]
    w = cx.mask_share.to(s.dtype).unsqueeze(-1)
    return Parts(w * s, (1 - w) * s)


def _lstm_direction(mod: nn.LSTM, x: Parts, suffix: str, reverse: bool, h0: Parts, c0: Parts,
                    cx: Context) -> tuple[Parts, Parts, Parts]:
    w_ih, w_hh = getattr(mod, "weight_ih" + suffix), getattr(mod, "weight_hh" + suffix)
    bias = (getattr(mod, "bias_ih" + suffix) + getattr(mod, "bias_hh" + suffix)
            if mod.bias else w_ih.new_zeros(w_ih.shape[0]))
    b_i, b_f, b_g, b_o = bias.chunk(4)
    steps = range(x.rel.shape[1] - 1, -1, -1) if reverse else range(x.rel.shape[1])
    h, c = h0, c0
    outs_r: list[torch.Tensor] = [x.rel.new_empty(0)] * x.rel.shape[1]
    outs_i: list[torch.Tensor] = list(outs_r)
    for t in steps:
        xr, xi = x.rel[:, t], x.irr[:, t]
        pre_r = xr @ w_ih.T + h.rel @ w_hh.T
        pre_i = xi @ w_ih.T + h.irr @ w_hh.T
        ir, ff, gr, oo = pre_r.chunk(4, dim=1)
        ii, fi, gi, oi = pre_i.chunk(4, dim=1)
        gate_i = shapley_three(ir, ii, b_i, torch.sigmoid)
        gate_f = shapley_three(ff, fi, b_f, torch.sigmoid)
        cand = shapley_three(gr, gi, b_g, torch.tanh)
        out_gate = torch.sigmoid(oo + oi + b_o)
        rel, irr, bb = gate_product(gate_i, cand)
        fr, fir, fb = gate_f
        rel = rel + (fr + fb) * c.rel
        irr = irr + (fr + fir + fb) * c.irr + fir * c.rel
        w = _step_share(xr, xi, cx)
        c = Parts(rel + w * bb, irr + (1 - w) * bb)
        full = torch.tanh(c.total())
        th_r = 0.5 * (torch.tanh(c.rel) + full - torch.tanh(c.irr))
        th_i = 0.5 * (torch.tanh(c.irr) + full - torch.tanh(c.rel))
        h = Parts(out_gate * th_r, out_gate * th_i)
        outs_r[t], outs_i[t] = h.rel, h.irr
    return Parts(torch.stack(outs_r, 1), torch.stack(outs_i, 1)), h, c


def _gru_direction(mod: nn.GRU, x: Parts, suffix: str, reverse: bool, h0: Parts,
                   cx: Context) -> tuple[Parts, Parts]:
    w_ih, w_hh = getattr(mod, "weight_ih" + suffix), getattr(mod, "weight_hh" + suffix)
    zeros = w_ih.new_zeros(w_ih.shape[0])
    b_ih = getattr(mod, "bias_ih" + suffix) if mod.bias else zeros
    b_hh = getattr(mod, "bias_hh" + suffix) if mod.bias else zeros
    bi_r, bi_z, bi_n = b_ih.chunk(3)
    bh_r, bh_z, bh_n = b_hh.chunk(3)
    steps = range(x.rel.shape[1] - 1, -1, -1) if reverse else range(x.rel.shape[1])
    h = h0
    outs_r: list[torch.Tensor] = [x.rel.new_empty(0)] * x.rel.shape[1]
    outs_i: list[torch.Tensor] = list(outs_r)
    for t in steps:
        xr, xi = x.rel[:, t], x.irr[:, t]
        gxr, gxz, gxn = (xr @ w_ih.T).chunk(3, dim=1)
        ixr, ixz, ixn = (xi @ w_ih.T).chunk(3, dim=1)
        ghr, ghz, ghn = (h.rel @ w_hh.T).chunk(3, dim=1)
        ihr, ihz, ihn = (h.irr @ w_hh.T).chunk(3, dim=1)
        reset = shapley_three(gxr + ghr, ixr + ihr, bi_r + bh_r, torch.sigmoid)
        update = shapley_three(gxz + ghz, ixz + ihz, bi_z + bh_z, torch.sigmoid)
        hn: Triple = (ghn, ihn, bh_n.expand_as(ghn))
        pr, pi, pb = gate_product(reset, hn)
        cand = shapley_three(gxn + pr, ixn + pi, bi_n + pb, torch.tanh)
        zr, zi, zb = update
        keep: Triple = (-zr, -zi, 1 - zb)
        rel, irr, bb = gate_product(keep, cand)
        rel = rel + (zr + zb) * h.rel
        irr = irr + (zr + zi + zb) * h.irr + zi * h.rel
        w = _step_share(xr, xi, cx)
        h = Parts(rel + w * bb, irr + (1 - w) * bb)
        outs_r[t], outs_i[t] = h.rel, h.irr
    return Parts(torch.stack(outs_r, 1), torch.stack(outs_i, 1)), h


def recurrent(mod: nn.Module, x: Parts, state: object, cx: Context) -> tuple[Parts, object]:
    """Decompose ``mod(x, state)`` for an ``nn.LSTM`` or ``nn.GRU``; returns what
    the module returns, ``(output, h_n)`` or ``(output, (h_n, c_n))``, as parts.
    An initial state (plain tensors) is shared by the input mask's share."""
    if not isinstance(mod, (nn.LSTM, nn.GRU)):
        raise DecompositionError(f"{type(mod).__name__} is not an LSTM or GRU")
    if isinstance(mod, nn.LSTM) and mod.proj_size:
        raise DecompositionError("nn.LSTM with proj_size > 0 cannot be decomposed")
    if x.rel.dim() != 3:
        raise DecompositionError(
            f"{type(mod).__name__}: CD needs batched input (3-D), got shape {tuple(x.rel.shape)}"
        )
    if not mod.batch_first:
        x = x.map(lambda t: t.transpose(0, 1))
    n = x.rel.shape[0]
    is_lstm = isinstance(mod, nn.LSTM)
    h_state: torch.Tensor | None = None
    c_state: torch.Tensor | None = None
    if state is not None:
        if is_lstm:
            if not (isinstance(state, tuple) and len(state) == 2):
                raise DecompositionError("nn.LSTM's initial state must be a tuple (h_0, c_0)")
            h_state, c_state = state
        elif isinstance(state, torch.Tensor):
            h_state = state
        if not isinstance(h_state, torch.Tensor) or (is_lstm and
                                                     not isinstance(c_state, torch.Tensor)):
            raise DecompositionError(
                f"{type(mod).__name__}: an initial state that depends on the input cannot be "
                "decomposed; pass plain tensors or none"
            )
    dirs = 2 if mod.bidirectional else 1
    h_n: list[Parts] = []
    c_n: list[Parts] = []
    layer_in = x
    for layer in range(mod.num_layers):
        outs = []
        for d in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            k = layer * dirs + d
            h0 = _initial(h_state, k, n, mod.hidden_size, x.rel, cx)
            if is_lstm:
                assert isinstance(mod, nn.LSTM)
                c0 = _initial(c_state, k, n, mod.hidden_size, x.rel, cx)
                out, h, c = _lstm_direction(mod, layer_in, suffix, d == 1, h0, c0, cx)
                c_n.append(c)
            else:
                assert isinstance(mod, nn.GRU)
                out, h = _gru_direction(mod, layer_in, suffix, d == 1, h0, cx)
            outs.append(out)
            h_n.append(h)
        layer_in = Parts(torch.cat([o.rel for o in outs], -1), torch.cat([o.irr for o in outs], -1))
        if mod.training and mod.dropout > 0 and layer < mod.num_layers - 1:
            keep = nn.functional.dropout(torch.ones_like(layer_in.rel), mod.dropout, True)
            layer_in = Parts(layer_in.rel * keep, layer_in.irr * keep)
    output = layer_in if mod.batch_first else Parts(layer_in.rel.transpose(0, 1),
                                                    layer_in.irr.transpose(0, 1))

    def stack(ps: list[Parts]) -> Parts:
        return Parts(torch.stack([p.rel for p in ps]), torch.stack([p.irr for p in ps]))

    if is_lstm:
        return output, (stack(h_n), stack(c_n))
    return output, stack(h_n)
