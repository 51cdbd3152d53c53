"""Plots: figures with the expected axes and the data the caller asked for (no image comparisons)."""

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from flowcourse import plots
from flowcourse.base import Flow, FlowSequence
from flowcourse.data import log_target


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class Affine2d(Flow):
    """x = A z + b, a test double with a closed-form inverse."""

    def __init__(self, a, b):
        super().__init__()
        self.a = torch.as_tensor(a, dtype=torch.float64)
        self.b = torch.as_tensor(b, dtype=torch.float64)

    def forward(self, z):
        return z @ self.a.T + self.b, torch.linalg.slogdet(self.a).logabsdet.expand(z.shape[0])


def test_headless_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_density_grid_is_the_density_with_x2_along_rows():
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)

    std = torch.tensor([0.5, 1.0], dtype=torch.float64)

    def log_prob(x):  # N(mean, diag(std^2))
        return -0.5 * (((x - mean) / std) ** 2).sum(1) - math.log(2 * math.pi * 0.5)

    density, t = plots.density_grid(log_prob, bounds=(-4, 4), n=81, dtype=torch.float64)
    assert density.shape == (81, 81)
    np.testing.assert_allclose(t, np.linspace(-4, 4, 81), atol=1e-12)
    i, j = np.unravel_index(density.argmax(), density.shape)
    assert (t[j], t[i]) == pytest.approx((1.0, -2.0))  # rows are x2, columns x1
    x1, x2 = np.meshgrid(t, t)
    expected = np.exp(-0.5 * (((x1 - 1) / 0.5) ** 2 + (x2 + 2) ** 2)) / (2 * np.pi * 0.5)
    np.testing.assert_allclose(density, expected, rtol=1e-12, atol=1e-15)
    inside = math.erf(6 / math.sqrt(2)) / 2 + math.erf(2 / math.sqrt(2)) / 2  # P(-4 < x2 < 4), x2 ~ N(-2, 1)
    mass = np.trapezoid(np.trapezoid(density, t, axis=1), t)
    assert mass == pytest.approx(inside, abs=1e-3)


def test_density_grid_maps_minus_infinity_to_zero():
    density, _ = plots.density_grid(lambda x: torch.where(x[:, 0] > 0, 0.0, -math.inf), n=10)
    assert np.isfinite(density).all()
    assert set(np.unique(density)) == {0.0, 1.0}


def test_density_heatmap_returns_one_labelled_axes_with_the_image():
    fig = plots.density_heatmap(log_target("U1"), n=50)
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")
    (image,) = ax.get_images()
    assert image.get_array().shape == (50, 50)
    assert image.get_extent() == [-4.0, 4.0, -4.0, 4.0]


def test_plots_draw_on_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.density_heatmap(lambda x: -(x**2).sum(1), n=10, ax=left) is fig
    assert plots.scatter_samples(torch.randn(20, 2), ax=right) is fig
    assert len(fig.axes) == 2
    assert len(left.get_images()) == 1 and len(right.collections) == 1


def test_scatter_samples_plots_the_points():
    x = torch.randn(123, 2, dtype=torch.float64)
    fig = plots.scatter_samples(x)
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.collections[0].get_offsets(), x.numpy())
    assert ax.get_xlabel() and ax.get_ylabel()
    fig = plots.scatter_samples(np.asarray(x))
    assert len(fig.axes) == 1


def test_stages_one_panel_for_the_base_and_one_per_layer():
    a1 = torch.tensor([[1.5, 0.3], [-0.2, 0.8]], dtype=torch.float64)
    a2 = torch.tensor([[0.7, -1.1], [0.4, 1.2]], dtype=torch.float64)
    b = torch.tensor([0.5, -0.25], dtype=torch.float64)
    flow = FlowSequence(Affine2d(a1, b), Affine2d(a2, -b), Affine2d(a1.T, b))
    z = torch.randn(40, 2, dtype=torch.float64)
    fig = plots.stages(flow, z)
    assert len(fig.axes) == 4
    # each panel holds the points after that many layers, computed here by hand
    expected = [z, z @ a1.T + b]
    expected.append(expected[-1] @ a2.T - b)
    expected.append(expected[-1] @ a1 + b)
    for ax, pts in zip(fig.axes, expected, strict=True):
        np.testing.assert_allclose(ax.collections[0].get_offsets(), pts.numpy(), rtol=1e-12, atol=1e-12)
    assert [ax.get_title() for ax in fig.axes] == ["base $z$", "1: Affine2d", "2: Affine2d", "3: Affine2d"]


def test_stages_of_a_single_layer_and_on_given_axes():
    layer = Affine2d([[2.0, 0.0], [1.0, 1.0]], [0.0, 1.0])
    assert len(plots.stages(layer, torch.randn(10, 2, dtype=torch.float64)).axes) == 2
    fig, axes = plt.subplots(1, 3)
    flow = FlowSequence(layer, layer)
    assert plots.stages(flow, torch.randn(10, 2, dtype=torch.float64), ax=axes) is fig
    with pytest.raises(ValueError, match="ax must hold 3 axes"):
        plots.stages(flow, torch.randn(10, 2, dtype=torch.float64), ax=axes[:2])


def test_density_1d_one_line_per_density_from_values_or_callables():
    xs = torch.linspace(-3, 3, 61, dtype=torch.float64)
    gauss = torch.exp(-(xs**2) / 2) / math.sqrt(2 * math.pi)
    fig = plots.density_1d(xs, {"values": gauss, "callable": lambda x: 0.5 * torch.exp(-x.abs())})
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["values", "callable"]
    np.testing.assert_allclose(lines[0].get_ydata(), gauss.numpy())
    np.testing.assert_allclose(lines[1].get_ydata(), 0.5 * np.exp(-np.abs(xs.numpy())))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x$", "$p(x)$")


def test_bad_plot_input_is_named():
    with pytest.raises(ValueError, match=r"x must have shape \('batch', 2\), got \(5, 3\)"):
        plots.scatter_samples(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor or numpy array, got list"):
        plots.scatter_samples([[0.0, 1.0]])
    with pytest.raises(ValueError, match="must return shape"):
        plots.density_heatmap(lambda x: x, n=5)
    with pytest.raises(ValueError, match=r"densities\['p'\] must have 4 values"):
        plots.density_1d(np.zeros(4), {"p": np.zeros(3)})
    with pytest.raises(TypeError, match="non-empty dict"):
        plots.density_1d(np.zeros(4), {})
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plots.scatter_samples(torch.zeros(3, 2), ax="left")
