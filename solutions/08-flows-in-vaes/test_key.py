"""Lesson 08 answer key: a VAE with a planar-flow posterior and a RealNVP prior.

Independent truths: torch.distributions for the Gaussian and Bernoulli terms, planar_forward (lesson 05,
itself checked against autograd) and autograd Jacobians for the posterior flow, autograd Jacobians of the
inverse for the flow prior, numerical integration for the prior's normalisation, and the importance-weighted
bound for the ELBO. The toolkit's plumbing (flowcourse.vae) is tested here with the key's formulas, the
released realnvp_prior.py against lesson 03's key and iaf_posterior.py against lesson 02's; the numbers the
notebook states (the banana's gaps, the digits run) are recomputed here and looked up in its text.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from flowcourse_lessons.lesson_02.key import IAF as lesson_02_iaf
from flowcourse_lessons.lesson_02.key import made_masks as lesson_02_made_masks
from flowcourse_lessons.lesson_03.key import RealNVP as lesson_03_realnvp
from flowcourse_lessons.lesson_05.key import planar_forward, planar_u_hat
from flowcourse_lessons.lesson_08 import iaf_posterior, realnvp_prior
from flowcourse_lessons.lesson_08.key import (
    FORMULAS,
    FlowVAE,
    PosteriorFlowScore,
    amortized_planar_flow,
    amortized_planar_forward,
    bernoulli_log_prob,
    compare_posterior_flows,
    diagonal_normal_log_prob,
    flow_elbo,
    importance_weighted_bound,
    importance_weighted_log_likelihood,
    train_vae,
)
from torch.distributions import Bernoulli, Normal

from flowcourse import vae
from flowcourse.base import StandardNormal
from flowcourse.jacobian import jacobian_logdet
from flowcourse.vae import binarize, elbo, log_importance_weights

D64 = torch.float64


def _binary(n, pixels=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, pixels, generator=g, dtype=D64) < 0.3).to(D64)


def _randomise(module, scale=0.5):
    """Random, far-from-zero weights everywhere (the prior's conditioners start at zero = identity)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))
    return module


# ---------------------------------------------------------------------------------------------- the pieces
def test_binarize_thresholds_grey_levels_at_8_and_flattens():
    x = torch.arange(17.0).reshape(1, 1, 1, 17)
    expected = torch.tensor([[0.0] * 9 + [1.0] * 8])  # 0..8 off, 9..16 on
    assert torch.equal(binarize(x), expected)
    assert binarize(torch.zeros(3, 1, 8, 8)).shape == (3, 64)


def test_diagonal_normal_log_prob_matches_torch_distributions():
    z, mu, log_sigma = torch.randn(3, 5, 4, dtype=D64), torch.randn(5, 4, dtype=D64), torch.randn(5, 4, dtype=D64)
    expected = Normal(mu, log_sigma.exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(diagonal_normal_log_prob(z, mu, log_sigma), expected)


def test_bernoulli_log_prob_matches_torch_distributions_and_is_finite_for_huge_logits():
    x, logits = _binary(6, 10), 3 * torch.randn(6, 10, dtype=D64)
    torch.testing.assert_close(bernoulli_log_prob(x, logits), Bernoulli(logits=logits).log_prob(x).sum(-1))
    huge = torch.tensor([[200.0, -200.0]])  # float32: log(sigmoid) would be log(0) for the wrong pixel
    out = bernoulli_log_prob(torch.tensor([[0.0, 1.0]]), huge)
    torch.testing.assert_close(out, torch.tensor([-400.0]))


# ------------------------------------------------------------------------------------ amortised planar flow
def test_amortized_planar_forward_worked_example_with_u_hat():
    """Seeds' example 3 (u=(1,0), w=(1,2), b=0, z=(0.5,-0.5)) with û: w^T û = -1 + log(1+e)."""
    z = torch.tensor([[0.5, -0.5]], dtype=D64)
    x, logdet = amortized_planar_forward(z, torch.tensor([[1.0, 0.0]], dtype=D64),
                                         torch.tensor([[1.0, 2.0]], dtype=D64), torch.zeros(1, dtype=D64))
    sech2 = 1 / math.cosh(-0.5) ** 2
    assert sech2 == pytest.approx(0.7864, abs=1e-4)  # the seeds' number
    assert float(logdet) == pytest.approx(math.log(1 + sech2 * (math.log(1 + math.e) - 1)), abs=1e-12)


def test_amortized_planar_forward_rows_equal_planar_forward_and_autograd():
    n, d = 6, 3
    z, u, w = (torch.randn(n, d, dtype=D64) for _ in range(3))
    b = torch.randn(n, dtype=D64)
    u[0] = -5 * w[0]  # w^T u << -1: raw u would fold space, û must not
    x, logdet = amortized_planar_forward(z, u, w, b)
    assert x.shape == (n, d) and logdet.shape == (n,)
    assert not torch.allclose(x, z)
    for i in range(n):
        row = slice(i, i + 1)
        x_ref, ld_ref = planar_forward(z[row], planar_u_hat(u[i], w[i]), w[i], b[i])
        torch.testing.assert_close(x[row], x_ref)
        torch.testing.assert_close(logdet[row], ld_ref)

        def layer(v, i=i):
            return amortized_planar_forward(v, u[i : i + 1], w[i : i + 1], b[i : i + 1])

        torch.testing.assert_close(logdet[row], jacobian_logdet(layer, z[row]))


def test_amortized_planar_logdet_stays_finite_in_float32_when_w_u_is_very_negative():
    w = torch.tensor([[1.0, 2.0]])
    u = -8.0 * w  # w^T u = -40: softplus(w^T u) - 1 rounds to -1, so 1 + h' w·û = 1 - 1 in float32
    z = torch.tensor([[0.4, -0.2]])  # w^T z + b = 0 exactly, h' = 1
    _, logdet = amortized_planar_forward(z, u, w, torch.zeros(1))
    _, logdet64 = amortized_planar_forward(z.double(), u.double(), w.double(), torch.zeros(1, dtype=D64))
    assert torch.isfinite(logdet).all()
    torch.testing.assert_close(logdet.double(), logdet64, rtol=1e-5, atol=0)
    assert float(logdet64) == pytest.approx(-40.0, abs=1e-6)  # log softplus(a) -> a as a -> -inf


def test_amortized_planar_flow_logdets_add_over_layers():
    n, K, d = 4, 3, 2
    z0 = torch.randn(n, d, dtype=D64)
    u, w, b = torch.randn(n, K, d, dtype=D64), torch.randn(n, K, d, dtype=D64), torch.randn(n, K, dtype=D64)
    zK, logdet = amortized_planar_flow(z0, u, w, b)
    z, total = z0, torch.zeros(n, dtype=D64)
    for k in range(K):
        z, ld = amortized_planar_forward(z, u[:, k], w[:, k], b[:, k])
        total = total + ld
    torch.testing.assert_close(zK, z)
    torch.testing.assert_close(logdet, total)


# --------------------------------------------------------------------------------------------- posterior
def _reference_flow(u, w, b):
    """One example's posterior flow built from lesson 05's planar_forward, one shared (u, w, b) per layer."""

    def f(z):
        for k in range(u.shape[0]):
            z, _ = planar_forward(z, planar_u_hat(u[k], w[k]), w[k], b[k])
        return z

    return f


def test_flow_posterior_log_density_is_base_density_minus_autograd_logdets():
    torch.manual_seed(1)
    model = FlowVAE(data_dim=10, latent_dim=3, hidden=16, n_flows=4).double()
    x, eps = _binary(4, 10), torch.randn(2, 4, 3, dtype=D64)
    zK, log_q0, sum_logdet = model.posterior(x, eps)
    assert zK.shape == (2, 4, 3) and log_q0.shape == sum_logdet.shape == (2, 4)
    log_q = log_q0 - sum_logdet

    mu, log_sigma, u, w, b = model.encode(x)
    z0 = mu + log_sigma.exp() * eps
    log_q0 = Normal(mu, log_sigma.exp()).log_prob(z0).sum(-1)
    for s in range(2):
        for i in range(4):
            f = _reference_flow(u[i], w[i], b[i])
            point = z0[s, i : i + 1]
            torch.testing.assert_close(zK[s, i : i + 1], f(point))
            expected = log_q0[s, i] - jacobian_logdet(f, point)[0]
            torch.testing.assert_close(log_q[s, i], expected)
    assert (zK - z0).abs().max() > 0.1, "the posterior flow is at the identity: the check could not fail"


# ------------------------------------------------------------------------------------------------- ELBO
def _hand_log_weights(model, x, eps):
    """Gaussian VAE by hand with torch.distributions; the prior's density by autograd of its inverse."""
    mu, log_sigma = model.encode(x)[:2]
    q = Normal(mu, log_sigma.exp())
    z = mu + log_sigma.exp() * eps
    log_lik = Bernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)
    if isinstance(model.prior, StandardNormal):
        log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
    else:
        flat = z.reshape(-1, z.shape[-1])
        base, _ = model.prior.flow.inverse(flat)
        log_prior = Normal(0.0, 1.0).log_prob(base).sum(-1) + jacobian_logdet(model.prior.flow.inverse, flat)
        log_prior = log_prior.reshape(z.shape[:-1])
    return log_lik + log_prior - q.log_prob(z).sum(-1)


@pytest.mark.parametrize("prior_flows", [0, 2])
def test_k0_elbo_is_the_gaussian_vae_elbo_by_hand(prior_flows):
    torch.manual_seed(2)
    model = FlowVAE(data_dim=12, latent_dim=2, hidden=8, n_flows=0, prior_flows=prior_flows).double()
    _randomise(model.prior)
    x = _binary(5, 12)
    got = elbo(model, x, n_samples=3, generator=torch.Generator().manual_seed(7))
    eps = torch.randn((3, 5, 2), generator=torch.Generator().manual_seed(7), dtype=D64)
    expected = _hand_log_weights(model, x, eps).mean(0)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)


def test_flow_prior_is_a_normalised_non_gaussian_density():
    torch.manual_seed(3)
    model = FlowVAE(data_dim=4, latent_dim=2, hidden=8, prior_flows=3).double()
    _randomise(model.prior, scale=0.3)
    t = torch.linspace(-12, 12, 481, dtype=D64)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        log_p = model.prior_log_prob(grid)
    mass = log_p.exp().sum() * (t[1] - t[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=2e-3)
    gaussian = StandardNormal(2).log_prob(grid)
    assert (log_p - gaussian).abs().max() > 0.1


@pytest.fixture(scope="module")
def trained():
    """A tiny VAE with a 2-layer flow posterior, trained briefly on the binarised training digits."""
    from flowcourse.data import digits

    model = train_vae(2, steps=150, seed=0, latent_dim=2, hidden=32, lr=1e-2)
    return model, binarize(digits().test[:150])


def test_elbo_is_below_the_importance_weighted_bound_on_a_trained_model(trained):
    model, x = trained
    with torch.no_grad():
        bound = elbo(model, x, n_samples=64, generator=torch.Generator().manual_seed(0)).mean()
        l8 = importance_weighted_log_likelihood(model, x, 8, generator=torch.Generator().manual_seed(1)).mean()
        l128 = importance_weighted_log_likelihood(model, x, 128, generator=torch.Generator().manual_seed(2)).mean()
    # Monte-Carlo noise of these means is ~0.01 nats; the gaps are ~0.1-0.2 nats.
    assert bound < l8 < l128
    assert 0.05 < float(l128 - bound) < 10.0
    assert -60.0 < float(bound) < -10.0  # 64 binary pixels: chance level is 64 log 2 = 44 nats


def test_importance_weighted_bound_with_one_sample_is_the_elbo(trained):
    model, x = trained
    with torch.no_grad():
        one = importance_weighted_log_likelihood(model, x[:20], 1, generator=torch.Generator().manual_seed(5))
        bound = elbo(model, x[:20], 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(one, bound)


# ---------------------------------------------------------------------------------------- determinism
def test_train_vae_is_deterministic_in_its_seed():
    x = _binary(40, 16).float()
    a = train_vae(2, steps=15, seed=4, latent_dim=2, hidden=8, batch_size=16, data=x)
    b = train_vae(2, steps=15, seed=4, latent_dim=2, hidden=8, batch_size=16, data=x)
    c = train_vae(2, steps=15, seed=5, latent_dim=2, hidden=8, batch_size=16, data=x)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_compare_posterior_flows_is_deterministic_and_scores_each_k():
    kwargs = dict(Ks=(0, 1), steps=3, seed=0, latent_dim=2, hidden=8, n_samples=2, k=4)
    first, second = compare_posterior_flows(**kwargs), compare_posterior_flows(**kwargs)
    assert first == second and set(first) == {0, 1}
    for score in first.values():
        assert isinstance(score, PosteriorFlowScore)
        assert score.gap == pytest.approx(score.log_likelihood - score.elbo)


# ------------------------------------------------------------------------------------- shapes and errors
def test_shapes():
    model = FlowVAE(data_dim=6, latent_dim=3, hidden=4, n_flows=2)
    x = _binary(5, 6).float()
    assert log_importance_weights(model, x, 7).shape == (7, 5)
    assert elbo(model, x, 2).shape == (5,)
    assert importance_weighted_log_likelihood(model, x, 3).shape == (5,)
    assert [t.shape for t in model.encode(x)] == [(5, 3), (5, 3), (5, 2, 3), (5, 2, 3), (5, 2)]


def test_bad_input_raises_clear_errors():
    model = FlowVAE(data_dim=6, latent_dim=2, hidden=4, n_flows=1)
    x = _binary(3, 6).float()
    with pytest.raises(ValueError, match="binarize"):
        elbo(model, 16 * x)
    with pytest.raises(ValueError, match=r"6\), got \(3, 5\)"):
        elbo(model, x[:, :5])
    with pytest.raises(TypeError, match="floating-point"):
        elbo(model, x.long())
    with pytest.raises(ValueError, match="n_samples"):
        elbo(model, x, 0)
    with pytest.raises(ValueError, match="k must be"):
        importance_weighted_log_likelihood(model, x, 0)
    with pytest.raises(ValueError, match=r"eps must have shape \(S, 3, 2\)"):
        model.posterior(x, torch.randn(4, 3, 3))
    with pytest.raises(TypeError, match="FlowVAE"):
        elbo(torch.nn.Linear(6, 2), x)
    with pytest.raises(ValueError, match="n_flows"):
        FlowVAE(n_flows=-1)
    z = torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        amortized_planar_forward(z, torch.randn(2), torch.randn(3, 2), torch.randn(3))
    with pytest.raises(TypeError, match="dtype"):
        amortized_planar_forward(z, torch.randn(3, 2, dtype=D64), torch.randn(3, 2), torch.randn(3))
    with pytest.raises(ValueError, match="steps"):
        train_vae(0, steps=0)
    with pytest.raises(ValueError, match="binarize"):
        train_vae(0, steps=1, data=torch.zeros(4, 1, 8, 8))


# ------------------------------------------------------------- the bound from its pieces (lesson 08 exercises)
def _exact_posterior_pieces(x, S, seed=0):
    """Prior N(0, 1), likelihood N(x; z, 1): the posterior is N(x/2, 1/2) and log p(x) = log N(x; 0, 2).

    q_0 = N(0, 1) pushed through the affine flow z_K = x/2 + z_0/√2 is that posterior exactly, so every
    sample's log weight is log p(x): a closed form the ELBO must hit with zero Monte-Carlo error.
    """
    z0 = torch.randn((S, x.shape[0]), generator=torch.Generator().manual_seed(seed), dtype=D64)
    zK = x / 2 + z0 / math.sqrt(2.0)
    logdet = jacobian_logdet(lambda v: x[0] / 2 + v / math.sqrt(2.0), z0[:, :1].reshape(-1, 1))  # -½ log 2
    sum_logdet = logdet[0].expand(S, x.shape[0])
    pieces = (Normal(zK, 1.0).log_prob(x), Normal(0.0, 1.0).log_prob(zK), Normal(0.0, 1.0).log_prob(z0), sum_logdet)
    return pieces, Normal(0.0, torch.tensor(2.0, dtype=D64).sqrt()).log_prob(x)  # float64 scale


def test_flow_elbo_is_log_px_when_the_flow_posterior_is_exact():
    x = torch.tensor([-1.0, 0.5, 2.0, 4.0], dtype=D64)
    pieces, log_px = _exact_posterior_pieces(x, S=7)
    got = flow_elbo(*pieces)
    assert got.shape == (4,)
    torch.testing.assert_close(got, log_px)
    # with the log-det's sign flipped (the flow contracts: Σ log|det| = -½ log 2) the "bound" lands
    # 2 · ½ log 2 = log 2 ABOVE log p(x), which no lower bound may do
    wrong = flow_elbo(*pieces[:3], -pieces[3])
    torch.testing.assert_close(wrong - log_px, torch.full_like(log_px, math.log(2.0)))


def test_flow_elbo_matches_the_models_log_weights():
    torch.manual_seed(4)
    model = _randomise(FlowVAE(data_dim=10, latent_dim=2, hidden=8, n_flows=3).double(), scale=0.7)
    x = _binary(5, 10)
    eps = torch.randn((4, 5, 2), generator=torch.Generator().manual_seed(2), dtype=D64)
    mu, log_sigma, u, w, b = model.encode(x)
    z0 = mu + log_sigma.exp() * eps
    pieces_q0 = Normal(mu, log_sigma.exp()).log_prob(z0).sum(-1)
    zK, sum_logdet = [], []
    for s in range(4):  # the posterior flow by autograd, one example at a time
        for i in range(5):
            def flow(v, i=i):
                return amortized_planar_flow(v, u[i:i + 1], w[i:i + 1], b[i:i + 1])[0]
            zK.append(flow(z0[s, i:i + 1]))
            sum_logdet.append(jacobian_logdet(flow, z0[s, i:i + 1]))
    zK = torch.cat(zK).reshape(4, 5, 2)
    sum_logdet = torch.cat(sum_logdet).reshape(4, 5)
    log_lik = Bernoulli(logits=model.decode(zK)).log_prob(x).sum(-1)
    log_pz = Normal(0.0, 1.0).log_prob(zK).sum(-1)
    by_hand = log_lik + log_pz - (pieces_q0 - sum_logdet)  # log weights: log p(x, z_K) - log q_K(z_K | x)
    torch.testing.assert_close(flow_elbo(log_lik, log_pz, pieces_q0, sum_logdet), by_hand.mean(0))
    torch.testing.assert_close(model.log_weights(x, eps), by_hand)  # the toolkit's plumbing, the key's formulas
    torch.testing.assert_close(model.bound(*model.bound_pieces(x, eps)), by_hand.mean(0))


def test_importance_weighted_bound_closed_forms_and_jensen():
    log_w = torch.randn(6, 4, dtype=D64) * 3 - 20
    expected = torch.log(torch.exp(log_w).mean(0))  # direct form is exact at these magnitudes in float64
    torch.testing.assert_close(importance_weighted_bound(log_w), expected)
    assert (importance_weighted_bound(log_w) >= log_w.mean(0)).all()  # ELBO estimate below, for every draw
    torch.testing.assert_close(importance_weighted_bound(log_w[:1]), log_w[0])  # S = 1 is the ELBO
    equal = torch.full((5, 3), -1000.0)  # exp underflows in float32 and float64: still exactly -1000
    torch.testing.assert_close(importance_weighted_bound(equal), torch.full((3,), -1000.0))
    pieces, log_px = _exact_posterior_pieces(torch.tensor([0.3, -2.0], dtype=D64), S=9)
    log_w = pieces[0] + pieces[1] - (pieces[2] - pieces[3])
    torch.testing.assert_close(importance_weighted_bound(log_w), log_px)


def test_importance_weighted_bound_agrees_with_the_models_estimate(trained):
    model, x = trained
    with torch.no_grad():
        log_w = log_importance_weights(model, x[:30], 16, generator=torch.Generator().manual_seed(3))
        estimate = importance_weighted_log_likelihood(model, x[:30], 16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(importance_weighted_bound(log_w), estimate)


def test_bound_pieces_raise_clear_errors():
    a = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"log_pz must have the shape of log_px_given_z, \(3, 2\)"):
        flow_elbo(a, torch.zeros(3, 4), a, a)
    with pytest.raises(ValueError, match=r"\(S, n\)"):
        flow_elbo(torch.zeros(3, 2, 1), a, a, a)
    with pytest.raises(TypeError, match="floating-point"):
        importance_weighted_bound(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(S, n\)"):
        importance_weighted_bound(torch.zeros(3, 2, 2))


# ------------------------------------------------------------------------------- toolkit and released file
def test_log_weights_are_single_draw_elbos_with_the_same_noise():
    torch.manual_seed(5)
    model = _randomise(FlowVAE(data_dim=8, latent_dim=2, hidden=8, n_flows=2, prior_flows=2).double(), scale=0.4)
    x = _binary(6, 8)
    log_w = log_importance_weights(model, x, 5, generator=torch.Generator().manual_seed(9))
    bound = elbo(model, x, 5, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(log_w.mean(0), bound)
    torch.testing.assert_close(log_w, _flow_log_weights(model, x, torch.randn(
        (5, 6, 2), generator=torch.Generator().manual_seed(9), dtype=D64)))


def _flow_log_weights(model, x, eps):
    """log p(x | z_K) + log p(z_K) - log q_K(z_K | x) by torch.distributions and autograd, example by example."""
    mu, log_sigma, u, w, b = model.encode(x)
    z0 = mu + log_sigma.exp() * eps
    out = torch.empty(eps.shape[:2], dtype=D64)
    for i in range(x.shape[0]):
        f = _reference_flow(u[i], w[i], b[i])
        zK = f(z0[:, i])
        flat_base, _ = model.prior.flow.inverse(zK)
        log_prior = Normal(0.0, 1.0).log_prob(flat_base).sum(-1) + jacobian_logdet(model.prior.flow.inverse, zK)
        log_q = Normal(mu[i], log_sigma[i].exp()).log_prob(z0[:, i]).sum(-1) - jacobian_logdet(f, z0[:, i])
        out[:, i] = Bernoulli(logits=model.decoder(zK)).log_prob(x[i]).sum(-1) + log_prior - log_q
    return out


def test_toolkit_vae_takes_the_notebooks_formulas():
    calls = []

    def bound(*pieces):
        calls.append(tuple(p.shape for p in pieces))
        return FORMULAS["bound"](*pieces)

    model = vae.FlowVAE(data_dim=6, latent_dim=2, hidden=4, n_flows=1, **{**FORMULAS, "bound": bound})
    x = _binary(3, 6).float()
    assert log_importance_weights(model, x, 4).shape == (4, 3)
    assert calls == [((1, 12),) * 4]  # each draw's weight is the bound of that draw alone
    with pytest.raises(TypeError, match="bound must be a function"):
        vae.FlowVAE(data_dim=6, **{**FORMULAS, "bound": None})
    with pytest.raises(TypeError, match="prior_flow"):
        vae.FlowVAE(data_dim=6, prior_flow=3, **FORMULAS)
    with pytest.raises(ValueError, match="prior_flows"):
        FlowVAE(prior_flows=-1)


@pytest.mark.parametrize(("d", "n_layers"), [(2, 2), (3, 3), (5, 4)])
def test_released_realnvp_agrees_with_lesson_03(d, n_layers, flowcheck):
    torch.manual_seed(d)
    key_flow = _randomise(lesson_03_realnvp(d, n_layers, hidden=8).double())
    torch.manual_seed(d)
    released = realnvp_prior.RealNVP(d, n_layers, hidden=8).double()
    assert [tuple(p.shape) for p in released.parameters()] == [tuple(p.shape) for p in key_flow.parameters()]
    released.load_state_dict(key_flow.state_dict())
    z = torch.randn(7, d, dtype=D64)
    x, logdet = released(z)
    x_key, logdet_key = key_flow(z)
    torch.testing.assert_close(x, x_key)
    torch.testing.assert_close(logdet, logdet_key)
    for got, want in zip(released.inverse(3 * x), key_flow.inverse(3 * x), strict=True):
        torch.testing.assert_close(got, want)
    flowcheck(released, z)


def test_released_realnvp_starts_as_lesson_03s_from_the_same_seed():
    """Same parameters in the same order: a VAE with either prior trains identically from one seed."""
    torch.manual_seed(0)
    key_flow = lesson_03_realnvp(2, 2, hidden=64)
    torch.manual_seed(0)
    released = realnvp_prior.RealNVP(2, 2, hidden=64)
    for (name, p), (key_name, q) in zip(released.state_dict().items(), key_flow.state_dict().items(), strict=True):
        assert name == key_name and torch.equal(p, q), name


# ------------------------------------------------------------------------------- the released IAF (lesson 02)


@pytest.mark.parametrize(("d", "hidden", "order"), [(2, [16], [0, 1]), (2, [8], [1, 0]), (4, [12], [2, 0, 3, 1]),
                                                     (3, [5, 7], [1, 2, 0])])
def test_released_made_masks_agree_with_lesson_02(d, hidden, order):
    for got, want in zip(iaf_posterior.made_masks(d, hidden, order), lesson_02_made_masks(d, hidden, order),
                         strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize(("d", "order"), [(2, [0, 1]), (2, [1, 0]), (4, [3, 1, 0, 2])])
def test_released_iaf_layer_agrees_with_lesson_02(d, order, flowcheck):
    key_flow = _randomise(lesson_02_iaf(d, [16], order=order).double(), scale=0.7)
    released = iaf_posterior.IAFLayer(d, hidden=16, order=order).double()
    key_state = {k: v for k, v in key_flow.state_dict().items() if ".net." in k}
    assert sorted(key_state) == sorted(released.state_dict())
    released.load_state_dict(key_state)
    z = 2 * torch.randn(9, d, dtype=D64)
    x, logdet = released(z)
    x_key, logdet_key = key_flow(z)
    torch.testing.assert_close(x, x_key)
    torch.testing.assert_close(logdet, logdet_key)
    assert logdet.abs().min() > 1e-3  # a non-identity layer: the comparison means something
    logdet_autograd = jacobian_logdet(lambda v: released(v)[0], z)
    torch.testing.assert_close(logdet, logdet_autograd)


def test_released_iaf_stack_alternates_the_order_and_adds_logdets():
    stack = _randomise(iaf_posterior.IAFStack(2, 3, hidden=8).double())
    z = torch.randn(6, 2, dtype=D64)
    x, total = stack(z)
    torch.testing.assert_close(total, jacobian_logdet(lambda v: stack(v)[0], z))
    jac = torch.autograd.functional.jacobian(lambda v: stack.layers[1](v[None])[0][0], z[0])
    assert jac[1, 0] == 0 and jac[0, 1] != 0  # layer 1 reads z_2 first: x_1 depends on z_2, not x_2 on z_1


# ------------------------------------------------------------------------- fitting q to one fixed posterior


def test_grid_log_evidence_normalises_a_known_density(float64_default):
    def log_joint(z):  # p(x) = 0.3 times the density of N((1, -0.5), diag(0.8^2, 1.3^2))
        return math.log(0.3) + diagonal_normal_log_prob(z, torch.tensor([1.0, -0.5]), torch.tensor([0.8, 1.3]).log())

    t, lj, log_px = vae.grid_log_evidence(log_joint, half_width=8.0, n=201)
    assert t.shape == (201,) and lj.shape == (201, 201)
    assert abs(log_px - math.log(0.3)) < 1e-4
    assert lj[150, 50] == log_joint(torch.tensor([[t[150], t[50]]]))[0]  # row: z_1, column: z_2


def test_fit_posterior_finds_an_exact_gaussian_posterior_and_planar_layers_use_the_formula(float64_default):
    # prior N(0, I), x | z ~ N(z_1 + z_2, 1), x = 2: the posterior is Gaussian but correlated
    def log_joint(z):
        return (diagonal_normal_log_prob(z, torch.zeros(2), torch.zeros(2))
                + diagonal_normal_log_prob(torch.tensor([2.0]), z.sum(-1, keepdim=True), torch.zeros(1)))

    log_px = float(Normal(0.0, math.sqrt(3.0)).log_prob(torch.tensor(2.0)))
    assert abs(vae.grid_log_evidence(log_joint)[2] - log_px) < 1e-5
    calls = []

    def flow(*args):
        calls.append(args[1].shape)
        return amortized_planar_flow(*args)

    torch.manual_seed(0)
    q = vae.FittedPosterior(2, vae.PlanarLayers(3, 2, posterior_flow=flow), base_log_prob=diagonal_normal_log_prob)
    vae.fit_posterior(log_joint, q, bound=flow_elbo, steps=300, n_samples=32)
    assert calls[0] == (32, 3, 2)  # one parameter row, repeated for every draw
    with torch.no_grad():
        gap = log_px - float(vae.posterior_elbo(log_joint, q, bound=flow_elbo, n_samples=20000,
                                                generator=torch.Generator().manual_seed(1)))
    assert -0.02 < gap < 0.05
    gaussian = vae.FittedPosterior(2, base_log_prob=diagonal_normal_log_prob)
    vae.fit_posterior(log_joint, gaussian, bound=flow_elbo, steps=300, n_samples=32)
    with torch.no_grad():
        gaussian_gap = log_px - float(vae.posterior_elbo(log_joint, gaussian, bound=flow_elbo, n_samples=20000))
    # the posterior has precision [[2, 1], [1, 2]] (correlation -1/2); the best diagonal Gaussian has variances 1/2
    # and misses the correlation: KL = -1/2 log(1 - rho^2) = 1/2 log(4/3) = 0.1438
    assert abs(gaussian_gap - 0.5 * math.log(4 / 3)) < 0.02
    with pytest.raises(ValueError, match="steps"):
        vae.fit_posterior(log_joint, gaussian, bound=flow_elbo, steps=0)


# ----------------------------------------------------------------- the numbers the notebook's text states

NOTEBOOK = Path(__file__).with_name("08-flows-in-vaes.ipynb")


@pytest.fixture
def float64_default():
    """The notebook's setting: torch.set_default_dtype(torch.float64)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _markdown() -> str:
    """The notebook's markdown, every run of white space (line breaks too) read as one space."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return " ".join(" ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").split())


def _banana_log_joint(z):
    log_prior = diagonal_normal_log_prob(z, torch.zeros(2, dtype=D64), torch.zeros(2, dtype=D64))
    return log_prior + diagonal_normal_log_prob(torch.tensor([1.0], dtype=D64), z[:, 1:] + z[:, :1] ** 2,
                                                torch.tensor([math.log(0.3)], dtype=D64))


def _banana_gap(make_flow, lr=0.05, fitted=False):
    """The notebook's fitted_gap, with the key's formulas (and the fitted posterior when ``fitted``)."""
    log_px = vae.grid_log_evidence(_banana_log_joint, half_width=5.0, n=401)[2]
    torch.manual_seed(0)
    q = vae.FittedPosterior(2, make_flow(), base_log_prob=diagonal_normal_log_prob)
    vae.fit_posterior(_banana_log_joint, q, bound=flow_elbo, steps=300, n_samples=32, lr=lr, seed=0)
    with torch.no_grad():
        bound = vae.posterior_elbo(_banana_log_joint, q, bound=flow_elbo, n_samples=20000,
                                   generator=torch.Generator().manual_seed(1))
    return (log_px - bound.item(), q) if fitted else log_px - bound.item()


def test_banana_gaussian_gap_is_stated(float64_default):
    text = _markdown()
    gap, q = _banana_gap(lambda: None, fitted=True)
    assert 0.5 < gap < 1.0
    assert f"gap of {gap:.2f} nats" in text and f"({gap:.2f} nats)" in text
    with torch.no_grad():  # the Monte-Carlo error of the 20 000-draw ELBO: "about 0.01 nats"
        zK, log_q0, sum_logdet = q.sample(20000, torch.Generator().manual_seed(1))
        log_w = _banana_log_joint(zK) - log_q0 + sum_logdet
    assert 0.003 < float(log_w.std()) / math.sqrt(20000) < 0.015
    assert "20 000 fresh draws (about 0.01 nats of Monte-Carlo error)" in text
    code = "\n".join("".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"])
    assert "half_width=5.0, n=401" in code and "$401 \\times 401$ grid over $[-5, 5]^2$" in text
    assert "steps=300, n_samples=32" in code and "(300 Adam steps of 32 draws)" in text
    assert "n_samples=20000" in code


def test_banana_flow_gaps_are_stated(float64_default):
    text = _markdown()
    gaussian = _banana_gap(lambda: None)
    planar8 = _banana_gap(lambda: vae.PlanarLayers(8, 2, posterior_flow=amortized_planar_flow))
    iaf1 = _banana_gap(lambda: iaf_posterior.IAFStack(2, 1, hidden=16), lr=0.02)
    iaf2 = _banana_gap(lambda: iaf_posterior.IAFStack(2, 2, hidden=16), lr=0.02)
    assert f"{planar8:.1f}" == "0.1" and "with eight layers it is down to about 0.1 nats" in text
    assert iaf1 < 0.2 and f"{iaf2:.1f}" == "0.1" and "One layer leaves less than 0.2 nats, two about 0.1." in text
    assert max(planar8, iaf1, iaf2) < gaussian / 4  # "close most of the gap"
    assert "eight planar layers or two IAF layers bring it to about 0.1" in text


@pytest.fixture(scope="module")
def digits_run():
    """The notebook's section-5 run with the key's formulas: K = 0, K = 2, K = 0 with a RealNVP prior."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    test = vae.binary_digits("test")
    out = {}
    for name, K, prior_flows in (("K0", 0, 0), ("K2", 2, 0), ("prior", 0, 2)):
        model = train_vae(K, steps=250, seed=0, prior_flows=prior_flows)
        with torch.no_grad():
            log_w = log_importance_weights(model, test, 256, generator=torch.Generator().manual_seed(1))
            eps = torch.randn((64, len(test), 2), generator=torch.Generator().manual_seed(2), dtype=test.dtype)
            usage = model.posterior(test, eps)[0].mean(dim=0).var(dim=0)
        out[name] = (log_w.mean(0).mean().item(), importance_weighted_bound(log_w).mean().item(), usage)
    torch.set_default_dtype(before)
    return out


def test_digits_run_numbers_are_stated(digits_run):
    text = _markdown()
    (elbo0, l0, usage0), (elbo2, l2, usage2), (elbo_p, l_p, _) = digits_run["K0"], digits_run["K2"], digits_run["prior"]
    assert bool((usage2 > 0.5).all()) and "The flow VAE uses both dimensions" in text
    assert f"= {usage0[1]:.2f}" in text and f"{usage0[1]:.2f}" == "0.02" and usage0[0] > 0.5  # z_2 switched off
    assert elbo2 - elbo0 > 0.3 and l2 - l0 > 0.3 and "a few tenths of a nat or more" in text
    assert all(0.4 < lk - ek < 1.2 for ek, lk in ((elbo0, l0), (elbo2, l2), (elbo_p, l_p)))
    assert "between half a nat and about a nat" in text
    assert f"changed the ELBO by {abs(elbo_p - elbo0):.1f} nats in this run" in text


def test_digit_counts_are_stated():
    text = _markdown()
    n_train, n_test = len(vae.binary_digits("train")), len(vae.binary_digits("test"))
    assert f"{n_train} binarised training digits" in text and f"{n_test} test digits" in text
