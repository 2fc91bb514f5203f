"""training/update.py: the direct fused-Adam update equals optimizer.step() bit for bit."""

import copy

import pytest
import torch

from vaekit.training.update import Update


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _grads(net, seed):
    torch.manual_seed(seed)
    loss = net(torch.randn(4, 7)).pow(2).sum()
    loss.backward()


def _run(net, opt, steps, use_update, lr_at=None, skip_at=()):
    update = Update(opt) if use_update else None
    for i in range(steps):
        if lr_at is not None:
            opt.param_groups[0]["lr"] = lr_at(i)
        if use_update:
            update.clear()
        else:
            opt.zero_grad(set_to_none=True)
        _grads(net, i)
        if i in skip_at:  # a step where one parameter gets no gradient
            net[2].bias.grad = None
        if use_update:
            update.apply()
        else:
            opt.step()
    return update


def _same(net_a, opt_a, net_b, opt_b):
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(a, b)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[k][name], sb[k][name]), (k, name)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_direct_update_equals_step_bit_for_bit(weight_decay):
    net_a, net_b = _net(), _net()
    opt_a = torch.optim.Adam(net_a.parameters(), lr=1e-2, weight_decay=weight_decay, fused=True)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=1e-2, weight_decay=weight_decay, fused=True)
    lr = lambda i: 1e-2 / (1 + i)  # a schedule changes the group's lr between steps
    update = _run(net_a, opt_a, 12, True, lr, skip_at=(5,))
    _run(net_b, opt_b, 12, False, lr, skip_at=(5,))
    assert update.lists is not None and not update.plain  # the direct path was taken
    _same(net_a, opt_a, net_b, opt_b)
    assert not all(torch.equal(a, b) for a, b in zip(net_a.parameters(), _net().parameters()))  # it did train


def test_a_loaded_state_is_picked_up_and_not_the_old_tensors():
    net_a, net_b = _net(), _net()
    opt_a = torch.optim.Adam(net_a.parameters(), lr=1e-2, fused=True)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=1e-2, fused=True)
    update = _run(net_a, opt_a, 3, True)
    _run(net_b, opt_b, 3, False)
    saved_net, saved_opt = copy.deepcopy(net_b.state_dict()), copy.deepcopy(opt_b.state_dict())
    for _ in range(2):  # both go on from the same saved point, as a resumed run does
        net_a.load_state_dict(saved_net)
        opt_a.load_state_dict(copy.deepcopy(saved_opt))  # load_state_dict may keep the given tensors
        for i in range(3, 6):
            update.clear()
            _grads(net_a, i)
            update.apply()
    net_b.load_state_dict(saved_net)
    opt_b.load_state_dict(copy.deepcopy(saved_opt))
    for i in range(3, 6):
        opt_b.zero_grad(set_to_none=True)
        _grads(net_b, i)
        opt_b.step()
    _same(net_a, opt_a, net_b, opt_b)


def test_other_optimisers_go_through_step():
    for make in (lambda p: torch.optim.Adam(p, lr=1e-2),  # not fused
                 lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True, fused=True),
                 lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)):
        net_a, net_b = _net(), _net()
        opt_a, opt_b = make(net_a.parameters()), make(net_b.parameters())
        update = _run(net_a, opt_a, 4, True)
        _run(net_b, opt_b, 4, False)
        assert update.plain and update.lists is None
        for a, b in zip(net_a.parameters(), net_b.parameters()):
            assert torch.equal(a, b)


def test_clear_sets_every_gradient_to_none():
    net = _net()
    update = Update(torch.optim.Adam(net.parameters(), fused=True))
    _grads(net, 0)
    assert all(p.grad is not None for p in net.parameters())
    update.clear()
    assert all(p.grad is None for p in net.parameters())
