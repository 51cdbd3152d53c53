"""Data: samplers against their geometry, energies against the paper's formulas, digits against sklearn."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from sklearn.datasets import load_digits

from flowcourse.data import (
    TOY_DATASETS,
    bits_per_dim,
    categorical_baseline_bpd,
    checkerboard,
    dequantize,
    digits,
    eight_gaussians,
    energy,
    energy_envelope,
    energy_normaliser,
    gaussian_baseline_bpd,
    log_target,
    rings,
    toy_sample,
    two_moons,
)

# ---------------------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_samplers_are_seeded_float32_and_of_the_right_shape(name):
    sampler = TOY_DATASETS[name]
    a, b, c = sampler(500, seed=7), sampler(500, seed=7), sampler(500, seed=8)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(toy_sample(name, 500, seed=7), a)
    assert a.abs().max() < 5.0  # the lessons plot on [-4, 4]^2


def test_samplers_do_not_touch_the_global_rng():
    state = torch.get_rng_state()
    for sampler in TOY_DATASETS.values():
        sampler(10)
    assert torch.equal(torch.get_rng_state(), state)


def test_two_moons_lie_on_their_half_circles():
    x = two_moons(2001, noise=0.0, seed=3).double() / 2 + torch.tensor([0.5, 0.25], dtype=torch.float64)
    upper = ((x.norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] >= -1e-6)
    lower = (((x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs() < 1e-5) & (
        x[:, 1] <= 0.5 + 1e-6
    )
    assert bool((upper | lower).all())
    assert int(upper.sum()) == 1000 and int(lower.sum()) == 1001
    noisy = two_moons(20000, noise=0.1, seed=3).double() / 2 + torch.tensor([0.5, 0.25], dtype=torch.float64)
    # jitter of std 0.1 before scaling: radial residual of the upper moon has std about 0.1
    left = noisy[noisy[:, 0] < -0.4]  # only the upper moon reaches there
    assert left.norm(dim=1).sub(1).std().item() == pytest.approx(0.1, rel=0.1)


def test_rings_radii_and_mass_proportional_to_length():
    r = rings(30000, noise=0.0, seed=1).double().norm(dim=1)
    counts = [int(((r - k).abs() < 1e-4).sum()) for k in (1, 2, 3)]
    assert sum(counts) == 30000
    np.testing.assert_allclose(np.array(counts) / 30000, [1 / 6, 2 / 6, 3 / 6], atol=0.01)
    noisy = rings(30000, noise=0.05, seed=1).double().norm(dim=1)
    outer = noisy[noisy > 2.5]
    assert outer.std().item() == pytest.approx(0.05, rel=0.1)


def test_eight_gaussians_modes_radius_weights_and_spread():
    x = eight_gaussians(16000, noise=0.1, seed=2).double()
    centres = 2.0 * torch.tensor([[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)] for k in range(8)])
    nearest = torch.cdist(x, centres.double()).argmin(1)
    counts = torch.bincount(nearest, minlength=8).double() / len(x)
    torch.testing.assert_close(counts, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01, rtol=0)
    for k in range(8):
        cluster = x[nearest == k]
        torch.testing.assert_close(cluster.mean(0), centres[k].double(), atol=0.01, rtol=0)
        assert cluster.std(0).tolist() == pytest.approx([0.1, 0.1], rel=0.08)
    assert x.norm(dim=1).mean().item() == pytest.approx(2.0, abs=0.01)
    assert eight_gaussians(4000, radius=3.0, noise=0.05).norm(dim=1).mean().item() == pytest.approx(
        3.0, abs=0.01
    )


def test_checkerboard_is_uniform_on_the_dark_squares():
    x = checkerboard(32000, seed=4).double()
    assert x.min() >= -4 and x.max() < 4
    col, row = ((x + 4) // 2).long().unbind(1)
    assert bool(((col + row) % 2 == 0).all())
    cell_counts = torch.bincount(col * 4 + row, minlength=16).double()[
        [i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    ]
    torch.testing.assert_close(
        cell_counts / len(x), torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01, rtol=0
    )
    # uniform within a square: the offset inside the square has mean 1 and variance 4/12
    offset = (x + 4) % 2
    torch.testing.assert_close(offset.mean(0), torch.ones(2, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(offset.var(0), torch.full((2,), 1 / 3, dtype=torch.float64), atol=0.02, rtol=0)


def test_bad_sampler_arguments_are_named():
    with pytest.raises(ValueError, match="unknown toy data set 'moons'.*two_moons"):
        toy_sample("moons", 10)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        two_moons(0)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        rings(10.0)
    with pytest.raises(ValueError, match="noise must be a non-negative"):
        eight_gaussians(10, noise=-1.0)


# ---------------------------------------------------------------------------------------------- energies


def paper_energy(name, z):
    """Rezende & Mohamed (2015), Table 1, written out in numpy straight from the paper."""
    z1, z2 = z[:, 0], z[:, 1]
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    if name == "U1":
        return 0.5 * ((np.linalg.norm(z, axis=1) - 2) / 0.4) ** 2 - np.log(
            np.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + np.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)
        )
    if name == "U2":
        return 0.5 * ((z2 - w1) / 0.4) ** 2
    if name == "U3":
        return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + np.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + np.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))


@pytest.mark.parametrize("name", ["U1", "U2", "U3", "U4"])
def test_energies_match_the_papers_formulas(name):
    z = np.random.default_rng(0).uniform(-3.5, 3.5, size=(50, 2))
    got = energy(name)(torch.from_numpy(z))
    assert got.dtype == torch.float64 and got.shape == (50,)
    np.testing.assert_allclose(got.numpy(), paper_energy(name, z), rtol=1e-10, atol=1e-10)
    got32 = energy(name)(torch.from_numpy(z).float())
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), paper_energy(name, z), rtol=1e-4, atol=1e-4)


def test_energies_at_hand_computed_points():
    pts = torch.tensor([[2.0, 0.0], [1.0, 1.4], [1.0, -2.0], [1.0, -0.5], [0.0, 0.0]], dtype=torch.float64)
    # U1 at (2, 0): on the ring, at one of the two bumps: -ln(1 + e^{-(4/0.6)^2/2})
    assert energy("U1")(pts[:1]).item() == pytest.approx(
        -math.log1p(math.exp(-0.5 * (4 / 0.6) ** 2)), abs=1e-12
    )
    # U2 at (1, 1.4): w1 = sin(pi/2) = 1, so 0.5 (0.4/0.4)^2
    assert energy("U2")(pts[1:2]).item() == pytest.approx(0.5, abs=1e-12)
    # U3 at (1, -2): w1 = 1, w2 = 3, second branch is exactly on its mode
    expected_u3 = -math.log(math.exp(-0.5 * (3 / 0.35) ** 2) + 1.0)
    assert energy("U3")(pts[2:3]).item() == pytest.approx(expected_u3, abs=1e-12)
    # U4 at (1, -0.5): w1 = 1, w3 = 3 sigmoid(0) = 1.5, second branch on its mode
    expected_u4 = -math.log(math.exp(-0.5 * (1.5 / 0.4) ** 2) + 1.0)
    assert energy("U4")(pts[3:4]).item() == pytest.approx(expected_u4, abs=1e-12)
    # U1 at the origin: 0.5 (2/0.4)^2 - ln(2 e^{-(2/0.6)^2/2})
    expected_u1 = 12.5 - math.log(2) + 0.5 * (2 / 0.6) ** 2
    assert energy("u1")(pts[4:5]).item() == pytest.approx(expected_u1, abs=1e-12)


def test_energies_stay_finite_with_finite_gradients_far_from_the_modes():
    z = torch.tensor([[0.0, 60.0], [-30.0, -40.0], [3.0, 25.0]], dtype=torch.float64, requires_grad=True)
    for name in ("U1", "U3", "U4"):
        u = energy(name)(z)
        assert torch.isfinite(u).all(), name
        (grad,) = torch.autograd.grad(u.sum(), z)
        assert torch.isfinite(grad).all(), name
    # far away -ln(e^a + e^b) = -max(a, b): at (0, 60), w1 = 0 and the first branch (z2 - w1) is the nearer
    assert energy("U3")(z[:1]).item() == pytest.approx(0.5 * (60 / 0.35) ** 2, rel=1e-12)


def test_log_target_is_minus_energy_inside_the_window_and_enveloped_outside():
    inside = torch.empty(200, 2, dtype=torch.float64).uniform_(-4, 4)
    outside = inside + torch.tensor([5.0, 0.0], dtype=torch.float64)
    for name in ("U1", "U2", "U3", "U4"):
        torch.testing.assert_close(log_target(name)(inside), -energy(name)(inside))
    torch.testing.assert_close(log_target("U1")(outside), -energy("U1")(outside))
    for name in ("U2", "U3", "U4"):
        wall = 0.5 * ((outside[:, 0].abs() - 4).clamp(min=0) / 0.5) ** 2
        torch.testing.assert_close(log_target(name)(outside), -energy(name)(outside) - wall)
    torch.testing.assert_close(energy_envelope(torch.tensor([[-5.0, 3.0]])), torch.tensor([2.0]))


def test_bad_energy_input_is_named():
    with pytest.raises(ValueError, match="unknown energy 'U5'"):
        energy("U5")
    with pytest.raises(ValueError, match=r"z must have shape \('batch', 2\), got \(4, 3\)"):
        energy("U1")(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        log_target("U2")(torch.zeros(4, 2, dtype=torch.long))


def test_normaliser_of_a_gaussian_energy_is_the_closed_form():
    sigma = torch.tensor([0.7, 1.3], dtype=torch.float64)
    log_z = energy_normaliser(lambda z: -0.5 * ((z - 0.3) / sigma).pow(2).sum(1), (-8.0, 8.0), 801)
    assert log_z == pytest.approx(math.log(2 * math.pi * 0.7 * 1.3), abs=1e-8)


def test_normalisers_of_the_enveloped_energies_match_closed_forms():
    # Integrating z2 first: each Gaussian branch contributes sigma sqrt(2 pi) for every z1, and the
    # envelope leaves 8 + 2 * 0.5 sqrt(pi / 2) of length in z1.
    length = 8 + math.sqrt(math.pi / 2)
    root = math.sqrt(2 * math.pi)
    assert energy_normaliser("U2") == pytest.approx(math.log(0.4 * root * length), abs=1e-4)
    assert energy_normaliser("U3") == pytest.approx(math.log(0.7 * root * length), abs=1e-4)
    assert energy_normaliser("U4") == pytest.approx(math.log(0.75 * root * length), abs=1e-4)


def test_normaliser_of_u1_matches_polar_quadrature():
    # An independent rule in other coordinates: Simpson in (r, theta) of exp(-U1) r, U1 from the paper.
    r = np.linspace(0.0, 6.0, 1201)
    theta = np.linspace(0.0, 2 * np.pi, 1201)
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    z = np.stack([rr * np.cos(tt), rr * np.sin(tt)], -1).reshape(-1, 2)
    f = np.exp(-paper_energy("U1", z)).reshape(rr.shape) * rr
    z_ref = integrate.simpson(integrate.simpson(f, x=theta, axis=1), x=r)
    assert energy_normaliser("U1") == pytest.approx(math.log(z_ref), abs=1e-6)


def test_normaliser_rejects_bad_grids():
    with pytest.raises(ValueError, match="low < high"):
        energy_normaliser("U1", (2.0, -2.0))
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        energy_normaliser("U1", (-2.0, 2.0), 1)


# ---------------------------------------------------------------------------------------------- digits


def test_digits_split_sizes_values_and_determinism():
    d = digits()
    assert (len(d.train), len(d.val), len(d.test)) == (1200, 300, 297)
    for part, labels in ((d.train, d.train_labels), (d.val, d.val_labels), (d.test, d.test_labels)):
        assert part.dtype == torch.float32 and part.shape[1:] == (1, 8, 8)
        assert part.min() == 0 and part.max() == 16
        assert torch.equal(part, part.round())
        assert labels.shape == (len(part),) and set(labels.tolist()) == set(range(10))
    again = digits()
    assert torch.equal(d.train, again.train) and torch.equal(d.test, again.test)


def test_digits_split_is_a_disjoint_cover_of_sklearn_digits_with_matching_labels():
    bunch = load_digits()
    d = digits()
    # the labelled images of the split, as a multiset, are exactly sklearn's (so: disjoint and covering)
    ours = np.concatenate(
        [
            np.concatenate([x.reshape(len(x), 64).numpy(), y[:, None].numpy()], 1)
            for x, y in ((d.train, d.train_labels), (d.val, d.val_labels), (d.test, d.test_labels))
        ]
    )
    theirs = np.concatenate([bunch.images.reshape(-1, 64), bunch.target[:, None]], 1)
    np.testing.assert_array_equal(np.unique(ours, axis=0, return_counts=True)[1].sum(), 1797)
    np.testing.assert_array_equal(
        np.sort(ours.view([("", ours.dtype)] * 65), axis=0),
        np.sort(theirs.astype(ours.dtype).view([("", ours.dtype)] * 65), axis=0),
    )
    # and not sklearn's order: the permutation shuffles
    assert not np.array_equal(d.train[:20].reshape(20, 64).numpy(), bunch.images[:20].reshape(20, 64))


def test_dequantize_stays_in_the_cell_of_each_level():
    x = digits().test.double()
    g = torch.Generator().manual_seed(5)
    y = dequantize(x, generator=g)
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert bool(((y >= 0) & (y < 1)).all())
    torch.testing.assert_close(torch.floor(y * 17), x)
    u = y * 17 - x
    assert u.mean().item() == pytest.approx(0.5, abs=0.01)
    assert u.var().item() == pytest.approx(1 / 12, abs=0.005)
    torch.testing.assert_close(dequantize(x, generator=torch.Generator().manual_seed(5)), y, rtol=0, atol=0)


def test_dequantize_refuses_what_is_not_integer_levels():
    with pytest.raises(ValueError, match="already dequantised"):
        dequantize(dequantize(torch.ones(2, 64)))
    with pytest.raises(ValueError, match="integer levels 0..16"):
        dequantize(torch.full((2, 64), 17.0))
    with pytest.raises(TypeError, match="floating-point"):
        dequantize(torch.ones(2, 64, dtype=torch.long))


def test_bits_per_dim_of_known_densities():
    # uniform on [0,1)^64 sends each of the 17 levels with log2(17) bits
    torch.testing.assert_close(bits_per_dim(torch.zeros(3)), torch.full((3,), math.log2(17)))
    # a density constant on each dequantisation cell, P(x) 17^D there, is a discrete model P in disguise:
    # its bits/dim must be -log2 P(x) / D exactly
    probs = torch.tensor([0.5, 0.25, 1e-3], dtype=torch.float64)
    log_density = torch.log(probs) + 2 * math.log(17)
    torch.testing.assert_close(bits_per_dim(log_density, dims=2), -torch.log2(probs) / 2)
    # binary data, one dimension, density 2 on half the interval
    torch.testing.assert_close(
        bits_per_dim(torch.tensor([math.log(2.0)]), dims=1, levels=2), torch.tensor([0.0])
    )
    with pytest.raises(TypeError, match="log_prob must be a floating-point tensor"):
        bits_per_dim([0.0])


def test_categorical_baseline_matches_an_independent_count():
    d = digits()
    train = d.train.reshape(1200, 64).long().numpy()
    test = d.test.reshape(297, 64).long().numpy()
    bits = 0.0
    for j in range(64):
        p = (np.bincount(train[:, j], minlength=17) + 1) / (1200 + 17)
        bits -= np.log2(p[test[:, j]]).sum()
    expected = bits / (297 * 64)
    assert categorical_baseline_bpd() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2.42, abs=0.05)  # the issue author's figure on their split


def test_gaussian_baselines_match_scipy():
    d = digits()
    g_train, g_test = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    train = dequantize(d.train.double(), generator=g_train).reshape(1200, 64).numpy()
    test = dequantize(d.test.double(), generator=g_test).reshape(297, 64).numpy()

    def bpd(train, test, logdet):
        logpdf = stats.multivariate_normal(train.mean(0), np.cov(train.T, bias=True)).logpdf(test) + logdet
        return float(np.mean((-logpdf + 64 * np.log(17)) / (64 * np.log(2))))

    plain = bpd(train, test, 0.0)
    assert gaussian_baseline_bpd() == pytest.approx(plain, rel=1e-9)
    a = 0.05
    s_train, s_test = a + (1 - 2 * a) * train, a + (1 - 2 * a) * test
    logdet = np.sum(np.log((1 - 2 * a) / (s_test * (1 - s_test))), 1)
    logit = bpd(np.log(s_train / (1 - s_train)), np.log(s_test / (1 - s_test)), logdet)
    assert gaussian_baseline_bpd(logit_alpha=a) == pytest.approx(logit, rel=1e-9)
    # both beat sending raw levels, and the logit Gaussian is near the issue author's 2.46
    assert logit < plain < math.log2(17)
    assert logit == pytest.approx(2.46, abs=0.05)
