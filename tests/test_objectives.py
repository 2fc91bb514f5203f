import pytest
import torch

from vaekit import VAE, ModelConfig, beta_at, elbo_loss, iwae_bound, log_importance_weights, log_likelihood


def _model(likelihood="bernoulli", arch="mlp", shape=(1, 8, 8), **kw):
    torch.manual_seed(0)
    return VAE(ModelConfig(arch=arch, hidden=(32,), channels=(8, 16), latent_dim=3, likelihood=likelihood, **kw), shape)


def test_beta_schedule_is_a_pure_linear_warmup():
    assert beta_at(0, 2.0, 0) == 2.0
    assert beta_at(0, 2.0, 100) == 0.0
    assert beta_at(50, 2.0, 100) == 1.0
    assert beta_at(500, 2.0, 100) == 2.0


def test_cyclical_annealing_rises_over_each_half_cycle_and_holds():
    # Fu et al. 2019: 400 steps in 4 cycles of 100, the weight rising over steps 0-50 of each
    weights = [beta_at(s, 2.0, 0, cycles=4, total_steps=400) for s in range(400)]
    for start in range(0, 400, 100):
        assert weights[start] == 0.0
        assert weights[start + 25] == pytest.approx(1.0)
        assert all(w == 2.0 for w in weights[start + 50:start + 100])
        rising = weights[start:start + 51]
        assert all(b > a for a, b in zip(rising, rising[1:]))
    assert beta_at(10, 2.0, 1000, cycles=4, total_steps=400) == pytest.approx(0.4)  # cycles replace warm-up


def test_elbo_terms_and_normalisation():
    model = _model()
    x = torch.bernoulli(torch.full((16, 1, 8, 8), 0.5))
    out = model(x, generator=torch.Generator().manual_seed(0))
    terms = elbo_loss(x, out, beta=1.0)
    # sum over data dims, mean over batch
    assert torch.allclose(terms["recon"], -out.likelihood.log_prob(x).mean())
    assert torch.allclose(terms["kl"], out.posterior.kl().mean())
    assert torch.allclose(terms["elbo"], -(terms["recon"] + terms["kl"]))
    beta4 = elbo_loss(x, out, beta=4.0)
    assert torch.allclose(beta4["loss"], terms["recon"] + 4 * terms["kl"])
    assert torch.allclose(beta4["elbo"], terms["elbo"])  # the bound does not depend on beta


def test_trim_leaves_out_a_huge_loss_and_averages_the_kept_examples():
    """trim > 0 on a batch with one example far worse than the rest: the loss differs from the
    untrimmed one and equals the plain mean over the kept examples; trim=0 and a trim too small
    to leave anyone out are the plain mean over all of them."""
    model = _model()
    x = torch.bernoulli(torch.full((16, 1, 8, 8), 0.5), generator=torch.Generator().manual_seed(2))
    out = model(x, generator=torch.Generator().manual_seed(0))
    out.likelihood.logits.data[5] = 40.0 * (1 - 2 * x[5])  # example 5: every pixel confidently wrong
    recon_i = -out.likelihood.log_prob(x)
    kl_i = out.posterior.kl()
    assert int(torch.argmax(recon_i + kl_i)) == 5 and recon_i[5] > 20 * recon_i.median()
    kept = [i for i in range(16) if i != 5]
    for free_bits in (0.0, 0.5):
        plain = elbo_loss(x, out, beta=2.0, free_bits=free_bits)
        trimmed = elbo_loss(x, out, beta=2.0, free_bits=free_bits, trim=0.1)  # floor(0.1 * 16) = 1 left out
        torch.testing.assert_close(plain["recon"], recon_i.mean())
        torch.testing.assert_close(trimmed["recon"], recon_i[kept].mean())
        torch.testing.assert_close(trimmed["kl"], kl_i[kept].mean())
        assert trimmed["loss"] < plain["loss"] - 10  # the huge loss is out
        kl_d = out.posterior.kl_per_dim()[kept].mean(0)
        torch.testing.assert_close(trimmed["loss"], recon_i[kept].mean() + 2.0 * kl_d.clamp(min=free_bits).sum())
        for key in plain:  # trim=0 is the untrimmed loss, exactly
            assert torch.equal(elbo_loss(x, out, beta=2.0, free_bits=free_bits, trim=0.0)[key], plain[key])
    # a trim that leaves nobody out (floor(0.05 * 16) = 0) is the plain loss up to rounding
    small = elbo_loss(x, out, beta=2.0, trim=0.05)
    for key in small:
        torch.testing.assert_close(small[key], elbo_loss(x, out, beta=2.0)[key])
    with pytest.raises(ValueError, match="trim"):
        elbo_loss(x, out, trim=1.0)


def test_trimmed_elbo_leaves_out_exactly_the_worst_examples_and_their_gradients():
    from vaekit.core.objectives import trim_at, trim_mask

    model = _model(likelihood="gaussian-learned", shape=(6,))
    torch.manual_seed(1)
    x = torch.randn(20, 6)
    x[[3, 11, 17]] += 25.0  # three rows far from the rest: the worst negative ELBOs of the batch
    x.requires_grad_(True)
    out = model(x, generator=torch.Generator().manual_seed(0))
    per_example = -out.likelihood.log_prob(x) + out.posterior.kl()
    assert set(torch.topk(per_example, 3).indices.tolist()) == {3, 11, 17}
    keep = trim_mask(per_example, 0.15)  # floor(0.15 * 20) = 3 left out
    assert keep.tolist() == [0.0 if i in (3, 11, 17) else 1.0 for i in range(20)]
    terms = elbo_loss(x, out, beta=1.0, trim=0.15)
    kept = [i for i in range(20) if i not in (3, 11, 17)]
    torch.testing.assert_close(terms["recon"], -out.likelihood.log_prob(x)[kept].mean())
    torch.testing.assert_close(terms["kl"], out.posterior.kl()[kept].mean())
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])
    torch.testing.assert_close(terms["elbo"], -(terms["recon"] + terms["kl"]))
    terms["loss"].backward()
    assert (x.grad[[3, 11, 17]] == 0).all()  # the left-out rows do not reach the gradient
    assert (x.grad[kept].abs().sum(dim=1) > 0).all()
    # The warm-up: no trimming for the first quarter of the steps by default.
    assert trim_at(0, 0.1, 100) == 0.0 and trim_at(24, 0.1, 100) == 0.0
    assert trim_at(25, 0.1, 100) == 0.1 and trim_at(99, 0.1, 100, start=0.5) == 0.1
    assert trim_at(99, 0.0, 100) == 0.0


def test_trimmed_free_bits_use_the_kept_rows_mean_kl():
    model = _model()
    x = torch.bernoulli(torch.full((16, 1, 8, 8), 0.5))
    out = model(x, generator=torch.Generator().manual_seed(0))
    from vaekit.core.objectives import trim_mask

    keep = trim_mask(-out.likelihood.log_prob(x) + out.posterior.kl(), 0.25).bool()
    assert int((~keep).sum()) == 4
    per_dim = out.posterior.kl_per_dim()[keep].mean(0)
    lam = float(per_dim.max().detach()) + 1.0
    terms = elbo_loss(x, out, beta=1.0, free_bits=lam, trim=0.25)
    torch.testing.assert_close(terms["loss"], terms["recon"] + lam * per_dim.numel())
    torch.testing.assert_close(terms["kl"], per_dim.sum())


def test_free_bits_only_penalise_kl_above_the_floor():
    model = _model()
    x = torch.bernoulli(torch.full((16, 1, 8, 8), 0.5))
    out = model(x, generator=torch.Generator().manual_seed(0))
    per_dim = out.posterior.kl_per_dim().mean(0)
    lam = float(per_dim.max().detach()) + 1.0  # every dimension below the floor
    terms = elbo_loss(x, out, beta=1.0, free_bits=lam)
    assert torch.allclose(terms["loss"], terms["recon"] + lam * per_dim.numel())
    assert torch.allclose(terms["kl"], per_dim.sum())  # the reported KL is the true KL
    # below the floor the KL exerts no pull on the posterior
    (grad,) = torch.autograd.grad(terms["loss"] - terms["recon"], out.posterior.mean, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_elbo_lies_below_monte_carlo_log_likelihood(likelihood):
    model = _model(likelihood).eval()
    x = torch.rand(8, 1, 8, 8)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        elbo = torch.stack([elbo_loss(x, model(x, generator=g))["elbo"] for _ in range(200)]).mean()
    ll = log_likelihood(model, x, num_samples=5000)
    assert ll.shape == (8,)
    assert elbo.item() < ll.mean().item()


def test_importance_weighted_bound_grows_with_k():
    model = _model().eval()
    x = torch.bernoulli(torch.full((32, 1, 8, 8), 0.3))
    with torch.no_grad():
        bounds = [
            iwae_bound(log_importance_weights(model, x.repeat(40, 1, 1, 1), k, generator=torch.Generator().manual_seed(1))).mean()
            for k in (1, 5, 50)
        ]
    assert bounds[0] < bounds[1] < bounds[2]


def test_log_likelihood_is_chunk_invariant_and_seeded():
    model = _model().eval()
    x = torch.bernoulli(torch.full((10, 1, 8, 8), 0.5))
    a = log_likelihood(model, x, num_samples=300, seed=3)
    b = log_likelihood(model, x, num_samples=300, seed=3)
    assert torch.equal(a, b)
    # chunking the samples differently changes the draws but not the estimate beyond MC error
    c = log_likelihood(model, x, num_samples=300, seed=3, max_elements=64 * 10 * 7, batch_size=3)
    assert torch.allclose(a, c, atol=1.0)
