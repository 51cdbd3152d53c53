"""The Glow answer key (lesson 04) against independent truth.

Truth used here: autograd Jacobians (``flowcheck``), round trips, practice problem 4's −228.5, ``slogdet``
of the reconstructed weight, explicit per-pixel matrix products, index-by-index squeeze, numpy statistics.
"""

import numpy as np
import pytest
import torch
from flowcourse_lessons.lesson_04.key import (
    ActNorm,
    ChannelCoupling,
    FactorOut,
    Glow,
    Invertible1x1Conv,
    LUInvertible1x1Conv,
    Sigmoid,
    Squeeze,
    Unsqueeze,
    actnorm_init,
    conv1x1_logdet,
    glow_step,
    lu_logdet,
    squeeze,
    unsqueeze,
)
from torch import nn

from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
from flowcourse.jacobian import jacobian_logdet

D64 = torch.float64
PRACTICE_4 = -228.499  # the seeds' answer: 32·32·(log 2 + log 0.5 + log 0.8)


def randomize(module: nn.Module, scale: float = 0.3) -> nn.Module:
    """Move every parameter away from its initialisation and mark ActNorms as initialised."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    for m in module.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(True)
    return module


def images(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=D64)


# ------------------------------------------------------------------------- every layer vs autograd truth

@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: ActNorm(2), (3, 2, 4, 4)),
        (lambda: Invertible1x1Conv(2), (3, 2, 4, 4)),
        (lambda: LUInvertible1x1Conv(2), (3, 2, 4, 4)),
        (lambda: ChannelCoupling(2, hidden=8), (3, 2, 4, 4)),
        (lambda: FactorOut(ActNorm(1), channels=2), (3, 2, 4, 4)),
        (lambda: FlowSequence(Squeeze(), ActNorm(8), Unsqueeze()), (3, 2, 4, 4)),
        (lambda: FlowSequence(Unsqueeze(), ActNorm(2), Squeeze()), (3, 8, 2, 2)),
        (lambda: glow_step(2, hidden=8), (3, 2, 4, 4)),
    ],
    ids=["actnorm", "conv1x1", "lu_conv1x1", "coupling", "factor_out", "squeeze", "unsqueeze", "step"],
)
def test_layer_matches_autograd(flowcheck, make, shape):
    flowcheck(randomize(make()), images(*shape))


def test_sigmoid_preprocessing_matches_autograd(flowcheck):
    flowcheck(Sigmoid(0.05), images(3, 1, 2, 2) * 3)
    layer = Sigmoid(0.01).double()
    x = torch.rand(4, 1, 4, 4, dtype=D64)  # dequantised pixels in [0, 1)
    z, logdet = layer.inverse(x)
    y = 0.01 + 0.98 * x
    torch.testing.assert_close(z, torch.log(y / (1 - y)))
    torch.testing.assert_close(logdet, jacobian_logdet(layer.inverse, x))
    with pytest.raises(ValueError, match="x must lie in"):
        Sigmoid(0.0).inverse(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="alpha"):
        Sigmoid(0.5)


def test_channel_coupling_with_odd_channels(flowcheck):
    flowcheck(randomize(ChannelCoupling(3, hidden=8)), images(2, 3, 2, 2))


def test_multiscale_log_prob_matches_autograd_truth(flowcheck):
    flow = Glow((2, 4, 4), levels=2, steps=1, hidden=8).double()
    dist = FlowDistribution(flow, StandardNormal(2, 4, 4).double())
    x = images(3, 2, 4, 4)
    dist.log_prob(3 * x + 1)  # the first data batch initialises every ActNorm
    randomize(flow, 0.1)
    flowcheck(flow, x)
    z, _ = flow.inverse(x)
    truth = StandardNormal(2, 4, 4).double().log_prob(z) + jacobian_logdet(flow.inverse, x)
    torch.testing.assert_close(dist.log_prob(x), truth)
    samples, log_p = dist.sample_and_log_prob(4)
    assert samples.shape == (4, 2, 4, 4)
    torch.testing.assert_close(dist.log_prob(samples), log_p)


def test_multiscale_on_digit_sized_images():
    flow = Glow((1, 8, 8), levels=3, steps=1, hidden=8)
    dist = FlowDistribution(flow, StandardNormal(1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    z, _ = flow.inverse(x)
    assert z.shape == x.shape  # the latent has the image's shape
    torch.testing.assert_close(flow(z)[0], x, atol=1e-5, rtol=1e-5)
    assert dist.log_prob(x).shape == (5,) and dist.sample(2).shape == (2, 1, 8, 8)


def test_multiscale_factors_out_half_the_channels_at_each_level():
    flow = Glow((1, 8, 8), levels=3, steps=1, hidden=4)
    level, channels, levels_seen = flow, 1, 0
    while True:
        levels_seen += 1
        assert isinstance(level.layers[0], Squeeze) and isinstance(level.layers[-1], Unsqueeze)
        if not isinstance(level.layers[1], FactorOut):
            break
        assert level.layers[1].split_sizes == [2 * channels, 2 * channels]
        level, channels = level.layers[1].inner, 2 * channels
    assert levels_seen == 3 and channels == 4  # last level: 4 channels of 2x2, squeezed to 16 of 1x1


def test_multiscale_latent_layout_is_as_documented():
    """squeeze(z)[:, :2C] is what level 1's steps leave in the first 2C channels; the rest is level 2's z."""
    flow = randomize(Glow((1, 8, 8), levels=2, steps=2, hidden=4), 0.1).double()
    x = images(3, 1, 8, 8)
    z, _ = flow.inverse(x)
    h = squeeze(x)
    for step in reversed(flow.layers[2:-1]):  # level 1's steps, data→base
        h, _ = step.inverse(h)
    s = squeeze(z)
    torch.testing.assert_close(s[:, :2], h[:, :2])
    inner = flow.layers[1].inner
    torch.testing.assert_close(s[:, 2:], inner.inverse(h[:, 2:])[0])


def test_glow_step_normalises_data_first():
    """Data→base a step is ActNorm, 1x1 conv, coupling: its ActNorm initialises on the raw input."""
    step = glow_step(2, hidden=4).double()
    x = images(8, 2, 4, 4) * 3 + 2
    step.inverse(x)
    actnorm = [m for m in step.modules() if isinstance(m, ActNorm)][0]
    torch.testing.assert_close(actnorm.bias.detach(), x.mean((0, 2, 3)))


# ------------------------------------------------------------------------------ practice 4 and LU log-det

def test_practice_4_lu_logdet():
    log_diag = torch.log(torch.tensor([2.0, 0.5, 0.8], dtype=D64))
    assert abs(float(lu_logdet(log_diag, 32, 32)) - PRACTICE_4) < 1e-3
    assert abs(float(conv1x1_logdet(torch.diag(log_diag.exp()), 32, 32)) - PRACTICE_4) < 1e-3


def test_practice_4_through_the_layer_both_directions():
    layer = LUInvertible1x1Conv(3).double()
    with torch.no_grad():
        layer.log_abs_s.copy_(torch.log(torch.tensor([2.0, 0.5, 0.8], dtype=D64)))
        layer.upper.normal_()  # random off-diagonal U and L do not change the determinant
        layer.lower.normal_()
    z = images(2, 3, 32, 32)
    x, logdet = layer(z)
    torch.testing.assert_close(logdet, torch.full((2,), PRACTICE_4, dtype=D64), atol=1e-3, rtol=0)
    _, logdet_inv = layer.inverse(x)
    torch.testing.assert_close(logdet_inv, torch.full((2,), -PRACTICE_4, dtype=D64), atol=1e-3, rtol=0)
    # missing h·w factor would give -0.2231: the per-pixel value
    assert abs(float(torch.linalg.slogdet(layer.weight().detach()).logabsdet) - (-0.2231)) < 1e-4


def test_lu_logdet_equals_slogdet_of_reconstructed_weight():
    layer = randomize(LUInvertible1x1Conv(5), 0.5).double()
    P, L, U = layer.factors()
    W = layer.weight()
    torch.testing.assert_close(W, P @ L @ U)
    assert torch.equal(torch.diagonal(L), torch.ones(5, dtype=D64)) and torch.equal(L, torch.tril(L))
    assert torch.equal(U, torch.triu(U)) and torch.equal(P.abs().sum(0), torch.ones(5, dtype=D64))
    truth = 3 * 7 * torch.linalg.slogdet(W).logabsdet
    torch.testing.assert_close(lu_logdet(layer.log_abs_s, 3, 7), truth)
    torch.testing.assert_close(layer(images(2, 5, 3, 7))[1], truth.expand(2))


@pytest.mark.parametrize("cls", [Invertible1x1Conv, LUInvertible1x1Conv])
def test_forward_applies_W_and_inverse_applies_W_inverse(cls):
    layer = randomize(cls(3), 0.5).double()
    W = layer.weight if isinstance(layer.weight, torch.Tensor) else layer.weight()
    z = images(2, 3, 4, 5)
    x, _ = layer(z)
    for b in range(2):
        for i in range(4):
            for j in range(5):
                torch.testing.assert_close(x[b, :, i, j], W @ z[b, :, i, j])
    z_back, _ = layer.inverse(x)
    torch.testing.assert_close(z_back, torch.linalg.solve(W, x.permute(0, 2, 3, 1).unsqueeze(-1))
                               .squeeze(-1).permute(0, 3, 1, 2))
    torch.testing.assert_close(z_back, z)


def test_1x1_convs_start_as_rotations():
    for layer in (Invertible1x1Conv(4), LUInvertible1x1Conv(4)):
        W = (layer.weight if isinstance(layer.weight, torch.Tensor) else layer.weight()).detach()
        torch.testing.assert_close(W @ W.T, torch.eye(4), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ ActNorm

def test_actnorm_data_init_gives_zero_mean_unit_variance():
    x = images(64, 3, 4, 4) * torch.tensor([0.5, 2.0, 7.0], dtype=D64).reshape(1, 3, 1, 1) \
        + torch.tensor([-3.0, 0.0, 10.0], dtype=D64).reshape(1, 3, 1, 1)
    layer = ActNorm(3).double()
    assert not bool(layer.initialized)
    z, logdet = layer.inverse(x)
    assert bool(layer.initialized)
    zn = z.detach().numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(zn.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(zn.var(1), 1.0, rtol=1e-12)
    xn = x.numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(layer.bias.detach().numpy(), xn.mean(1), rtol=1e-12)
    np.testing.assert_allclose(logdet.detach().numpy(), -16 * np.log(xn.std(1)).sum(), rtol=1e-12)
    bias, log_scale = actnorm_init(x)
    torch.testing.assert_close(log_scale, torch.from_numpy(np.log(xn.std(1))))
    # forward (sampling) never initialises
    fresh = ActNorm(3).double()
    fresh(x)
    assert not bool(fresh.initialized)


def test_actnorm_state_dict_round_trip_does_not_reinitialise():
    trained = ActNorm(2).double()
    trained.inverse(images(16, 2, 4, 4) * 5 + 3)
    with torch.no_grad():  # pretend training moved the parameters
        trained.bias.add_(1.0)
        trained.log_scale.sub_(0.5)
    assert "initialized" in trained.state_dict()
    loaded = ActNorm(2).double()
    loaded.load_state_dict(trained.state_dict())
    new_batch = images(16, 2, 4, 4)
    z, _ = loaded.inverse(new_batch)
    torch.testing.assert_close(loaded.bias, trained.bias)
    torch.testing.assert_close(loaded.log_scale, trained.log_scale)
    torch.testing.assert_close(z, trained.inverse(new_batch)[0])
    # the check can fail: a fresh module without the state re-initialises on that batch
    fresh = ActNorm(2).double()
    fresh.inverse(new_batch)
    assert not torch.allclose(fresh.bias, trained.bias)


def test_glow_state_dict_round_trip_keeps_log_prob():
    flow = Glow((1, 4, 4), levels=2, steps=1, hidden=4).double()
    x = torch.rand(8, 1, 4, 4, dtype=D64)
    dist = FlowDistribution(flow, StandardNormal(1, 4, 4).double())
    dist.log_prob(x)
    randomize(flow, 0.1)
    before = dist.log_prob(x)
    copy = FlowDistribution(Glow((1, 4, 4), levels=2, steps=1, hidden=4).double(),
                            StandardNormal(1, 4, 4).double())
    copy.load_state_dict(dist.state_dict())
    torch.testing.assert_close(copy.log_prob(x), before)  # a re-initialised ActNorm would change it


# ------------------------------------------------------------------------------------------------ squeeze

def test_squeeze_matches_its_index_definition_and_inverts():
    x = images(2, 3, 4, 6)
    s = squeeze(x)
    assert s.shape == (2, 12, 2, 3)
    for c in range(3):
        for i in range(2):
            for j in range(2):
                assert torch.equal(s[:, 4 * c + 2 * i + j], x[:, c, i::2, j::2])
    assert torch.equal(unsqueeze(s), x)
    y = images(2, 8, 3, 5)
    assert torch.equal(squeeze(unsqueeze(y)), y)
    x_out, logdet = Squeeze()(x)
    assert torch.equal(x_out, s) and torch.equal(logdet, torch.zeros(2, dtype=D64))
    assert torch.equal(Unsqueeze()(s)[0], x) and torch.equal(Unsqueeze().inverse(x)[0], s)


# ------------------------------------------------------------------------------------------------ bad input

def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"3 channels.*\(2, 2, 4, 4\)"):
        ActNorm(3)(torch.randn(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\(batch, C, H, W\)"):
        LUInvertible1x1Conv(3).inverse(torch.randn(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        Invertible1x1Conv(2)(torch.ones(1, 2, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="even height and width"):
        squeeze(torch.randn(1, 1, 3, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        unsqueeze(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="singular"):
        conv1x1_logdet(torch.tensor([[1.0, 2.0], [2.0, 4.0]]), 4, 4)
    singular = Invertible1x1Conv(2)
    with torch.no_grad():
        singular.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match="singular"):
        singular.inverse(torch.randn(1, 2, 2, 2))
    with pytest.raises(ValueError, match="U_ii = 0"):
        lu_logdet(torch.tensor([0.0, -float("inf")]), 2, 2)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*levels"):
        Glow((1, 6, 6), levels=2, steps=1)


# ------------------------------------------------------------------------ what the notebook's demo uses

def test_released_soft_clamp_agrees_with_lesson_03_key():
    """realnvp_clamp.soft_clamp (released with the notebook) is lesson 03's graded soft_clamp."""
    from flowcourse_lessons.lesson_03.key import soft_clamp as key_soft_clamp
    from flowcourse_lessons.lesson_04.realnvp_clamp import soft_clamp

    log_s = 3.0 * images(4, 3, 5, 2)
    for bound in (0.5, 2.0, 7.3):
        torch.testing.assert_close(soft_clamp(log_s, bound), key_soft_clamp(log_s, bound), atol=0, rtol=0)
        assert not torch.allclose(soft_clamp(log_s, bound), log_s)  # the clamp is not the identity here
    with pytest.raises(ValueError, match="bound"):
        soft_clamp(log_s, 0.0)


def test_toolkit_coupling_with_the_released_clamp_is_the_keys_coupling(flowcheck):
    """The demo's ChannelCoupling(c, hidden, log_scale_map=soft clamp) is the key's ChannelCoupling(c, hidden)."""
    from flowcourse_lessons.lesson_04.realnvp_clamp import soft_clamp

    from flowcourse import glow_blocks

    key_layer = randomize(ChannelCoupling(5, hidden=8, clamp=0.7), 0.5).double()
    demo = glow_blocks.ChannelCoupling(5, hidden=8, log_scale_map=lambda s: soft_clamp(s, 0.7)).double()
    demo.load_state_dict(key_layer.state_dict())
    z, x = images(3, 5, 4, 2), images(3, 5, 4, 2)
    for a, b in zip((*key_layer(z), *key_layer.inverse(x)), (*demo(z), *demo.inverse(x)), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    flowcheck(demo, z)
    unclamped = glow_blocks.ChannelCoupling(5, hidden=8).double()
    unclamped.load_state_dict(key_layer.state_dict())
    assert not torch.allclose(unclamped(z)[1], demo(z)[1])  # the clamp acts at these parameters


# ------------------------------------------------------------------------------ lesson 04's numeric answers

def test_lesson_04_numeric_answers():
    """quiz.py's lesson-04 numbers: the seeds' ±228.5, data.bits_per_dim, and a count through Glow's levels."""
    import math

    from flowcourse_lessons.lesson_04 import key as quiz

    from flowcourse.data import bits_per_dim

    assert quiz.practice_4_logdet_forward == pytest.approx(-228.5, abs=0.05)  # the seeds' answer, base→data
    assert quiz.practice_4_logdet_inverse == pytest.approx(228.5, abs=0.05)  # data→base: the sign flips
    assert quiz.practice_4_logdet_forward == pytest.approx(32 * 32 * math.log(2.0 * 0.5 * 0.8), abs=1e-9)
    assert quiz.quiz_04_bits_per_dim == pytest.approx(float(bits_per_dim(torch.tensor([85.0], dtype=D64))), abs=1e-9)
    assert quiz.quiz_04_nats_per_image == pytest.approx(2.18 * 64 * math.log(2), abs=1e-9)
    # level 3 of a three-level Glow on 1x8x8: the innermost steps' ActNorm sees C·H·W = quiz_04_level_dims
    level, size = Glow((1, 8, 8), levels=3, steps=1, hidden=4), 8
    for _ in range(2):
        level, size = level.layers[1].inner, size // 2
    actnorm = level.layers[1].layers[2]
    assert isinstance(actnorm, ActNorm)
    assert actnorm.channels * (size // 2) ** 2 == quiz.quiz_04_level_dims == 16


# ------------------------------------------------------------ every number the notebook's text states, computed

NOTEBOOK = __import__("pathlib").Path(__file__).with_name("04-glow.ipynb")


def notebook_markdown() -> str:
    """The notebook's markdown cells, whitespace collapsed (line breaks do not split a stated number)."""
    import json

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return " ".join(" ".join("".join(c["source"]).split()) for c in cells if c["cell_type"] == "markdown")


def test_float32_slogdet_error_figures_are_the_ones_stated():
    """The float32 error of slogdet per 32x32 image (C = 256, 20 random W), as the demo measures it (one thread)."""
    from flowcourse.glow_lu import slogdet_float32_error

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the notebook runs on one thread; LAPACK's rounding depends on the thread count
    try:
        errors = 32 * 32 * slogdet_float32_error(256, [1.0, 1e6], draws=20, seed=0)
    finally:
        torch.set_num_threads(threads)
    well, ill = errors[0], errors[1]
    text = notebook_markdown()
    assert f"about {well.median():.3f} nats per image" in text
    assert f"median of {ill.median():.0f} nats per image over the 20 matrices" in text
    assert ill.min() < 1 and f"from under 1 to {ill.max():.0f} nats" in text
    # the written question's model answer quotes the same measurement
    assert f"about {well.median():.3f} nats for a well-conditioned $W$, a median of {ill.median():.0f} nats and up " \
           f"to {ill.max():.0f} at condition number $10^6$" in text
    # the LU sum is exact: a float64 slogdet of P L U against Σ log|s_i| agrees to rounding
    layer = randomize(LUInvertible1x1Conv(8), 0.5).double()
    with torch.no_grad():
        assert abs(float(torch.linalg.slogdet(layer.weight()).logabsdet - layer.log_abs_s.sum())) < 1e-10


def test_stated_baselines_and_units_are_computed():
    """The table of baselines, the uniform 4.09 and practice problem 4's ±228.5, recomputed."""
    import math

    from flowcourse.data import categorical_baseline_bpd, gaussian_baseline_bpd

    text = notebook_markdown()
    rows = {
        "no model (uniform)": math.log2(17),
        "independent per-pixel categoricals (add-one smoothing)": categorical_baseline_bpd(),
        "one full-covariance Gaussian on the dequantised pixels $y$": gaussian_baseline_bpd(),
        "one full-covariance Gaussian after the logit transform, $\\alpha = 0.05$":
            gaussian_baseline_bpd(logit_alpha=0.05),
        "one full-covariance Gaussian after the logit transform, $\\alpha = 0.01$ (our flow's preprocessing)":
            gaussian_baseline_bpd(logit_alpha=0.01),
    }
    for name, bpd in rows.items():
        assert f"| {name} | {bpd:.2f} |" in text, name
    assert f"$\\log_2 17 \\approx {math.log2(17):.2f}$" in text
    practice = 32 * 32 * math.log(2.0 * 0.5 * 0.8)
    assert f"\\approx {practice:.1f}$" in text and f"${-practice:+.1f}$" in text


def test_nats_per_image_question_names_the_discrete_quantity():
    """Q3: 2.18 bits/dim is −log P(x) ≈ −log p(y) + 64 log 17 nats per image, not the flow's −log p(y)."""
    import math

    from flowcourse_lessons.lesson_04 import key as quiz

    from flowcourse.data import bits_per_dim

    minus_log_p_y = quiz.quiz_04_nats_per_image - 64 * math.log(17)  # what the flow's log_prob gives, negated
    assert minus_log_p_y == pytest.approx(-84.618, abs=1e-3)
    assert quiz.quiz_04_nats_per_image == pytest.approx(96.708, abs=1e-3)
    assert float(bits_per_dim(torch.tensor([-minus_log_p_y], dtype=D64))) == pytest.approx(2.18, abs=1e-12)
    text = notebook_markdown()
    assert "negative log-likelihood of a **discrete** digit, $-\\log P(x)$" in text
    assert "$-\\log p(y) + 64\\log 17$" in text


def test_multiscale_counts_stated_for_the_two_level_flow():
    """Section 6: level 1's steps act on 64 coordinates and factor out 32; level 2's act on the other 32."""
    flow = Glow((1, 8, 8), levels=2, steps=1, hidden=4)
    split = flow.layers[1]
    level_1 = 4 * 4 * 4  # squeezed 1x8x8
    factored = split.split_sizes[0] * 4 * 4
    level_2 = split.split_sizes[1] * 4 * 4
    text = notebook_markdown()
    assert f"level 1's steps act on all {level_1} coordinates and factor out {factored} of them; level 2's steps " \
           f"act on the other {level_2}" in text
