"""The optimiser's part of a step: clear the gradients before backward, update after it.

``torch.optim.Adam(fused=True)`` updates every parameter in one kernel, but each ``step()``
first rebuilds, in Python, six lists of tensors from the optimiser's state, and
``zero_grad`` walks its parameter groups under a profiler range. On the MNIST MLP (10
parameter tensors, 3.2-5.8 ms a step on a 2-core CPU) skipping that Python took about 5% off the step
(bench/update_ab.py, bench/results/update_ab.md). :class:`Update` builds the lists once, after
the optimiser's first ``step()`` has made its state, and afterwards calls torch's functional
``adam`` with the fused kernel on them: the same kernel on the same tensors, so the weights
and the optimiser's state (and so ``state_dict`` and resume) are bitwise those of ``step()``.
Anything else (another optimiser, several parameter groups, amsgrad, a parameter without a
gradient, state replaced by ``load_state_dict``) goes through ``optimizer.step()``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.optim.adam import adam


class Update:
    """``clear()`` before backward (gradients set to None) and ``apply()`` after it (``optimizer.step()``,
    or the same fused Adam kernel without its per-step Python)."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.lists: Optional[tuple[list, list, list]] = None  # the state's exp_avgs, exp_avg_sqs, steps, in parameter order
        self.plain = False  # True: this optimiser always goes through step()

    def clear(self) -> None:
        for p in self.params:
            p.grad = None

    def apply(self) -> None:
        lists = self.lists
        if lists is None or self.optimizer.state.get(self.params[0], {}).get("exp_avg") is not lists[0][0]:
            self.optimizer.step()  # the first step makes the state; a load_state_dict replaces it
            if not self.plain:
                self.lists = self._fused_lists()
                self.plain = self.lists is None
            return
        exp_avgs, exp_avg_sqs, steps = lists
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            self.optimizer.step()  # it skips the parameters without a gradient
            return
        group = self.optimizer.param_groups[0]
        with torch.no_grad():  # as step() runs it: in-place updates of leaf tensors, not recorded
            adam(self.params, grads, exp_avgs, exp_avg_sqs, [], steps, fused=True, capturable=group["capturable"],
                 differentiable=False, has_complex=False, decoupled_weight_decay=group.get("decoupled_weight_decay", False),
                 amsgrad=False, beta1=group["betas"][0], beta2=group["betas"][1], lr=group["lr"],
                 weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])

    def _fused_lists(self) -> Optional[tuple[list, list, list]]:
        """The state's tensors in parameter order, where the direct call is the same update as
        ``step()``; None (``step()`` every time) otherwise."""
        opt = self.optimizer
        if type(opt) is not torch.optim.Adam or len(opt.param_groups) != 1:
            return None
        group = opt.param_groups[0]
        if not group.get("fused") or group["amsgrad"] or group["differentiable"] or any(
                getattr(opt, name, None) is not None for name in ("grad_scale", "found_inf")):
            return None
        states = [opt.state.get(p, {}) for p in self.params]
        if not self.params or any("exp_avg" not in s or p.is_complex() for p, s in zip(self.params, states)):
            return None
        return [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [s["step"] for s in states]
