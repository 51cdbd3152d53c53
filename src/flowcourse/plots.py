r"""Plots for the lessons: densities on a grid, samples, a flow's stage-by-stage warp, 1-D densities.

Every function draws on ``ax`` when given (so lessons can compose panels) and otherwise on a new small
``pyplot`` figure, labels its axes, and returns the :class:`~matplotlib.figure.Figure`. In a notebook the
figure shows at the end of the cell; end the call with ``;`` (or assign it) so that the returned figure is
not displayed a second time. Without a display (CI, a terminal over ssh) the ``Agg`` backend is used.

References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, Fig. 3 (density
heatmaps); Dinh et al. (2017), *Density estimation using Real NVP*, Fig. 1 (stage-by-stage warps).

>>> import torch
>>> fig = scatter_samples(torch.randn(100, 2))
>>> len(fig.axes)
1
>>> plt.close(fig)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from flowcourse.base import check_batch

if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend
        plt.switch_backend("Agg")

__all__ = ["density_grid", "density_heatmap", "scatter_samples", "stages", "density_1d"]

PANEL = 3.2  # inches per panel: small enough for a row of five on a laptop screen


def _axes(ax: Axes | None, width: float = PANEL, height: float = PANEL) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def _numpy(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def density_grid(
    log_prob_fn: Callable[[Tensor], Tensor],
    *,
    bounds: tuple[float, float] = (-4, 4),
    n: int = 200,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, np.ndarray]:
    r"""The density :math:`p(x) = e^{\log p(x)}` on an ``n`` x ``n`` grid over ``bounds``², and the grid axis.

    ``log_prob_fn`` maps ``(batch, 2)`` points of ``dtype`` to ``(batch,)`` log-densities (e.g. a
    ``FlowDistribution``'s ``log_prob``, which uses the inverse direction). Returns ``(density, t)`` with
    ``density[i, j]`` at :math:`(x_1, x_2) = (t_j, t_i)`, i.e. rows indexed by :math:`x_2`, as ``imshow``
    expects. Non-finite log-densities (outside a support) become density 0.

    >>> d, t = density_grid(lambda x: -0.5 * (x**2).sum(1) - 1.8378770664, n=3, bounds=(-1, 1))
    >>> round(float(d[1, 1]), 4), t.tolist()
    (0.1592, [-1.0, 0.0, 1.0])
    """
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be callable (Tensor -> Tensor), got {type(log_prob_fn).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    lo, hi = (float(b) for b in bounds)
    if not hi > lo:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    t = torch.linspace(lo, hi, n, dtype=dtype)
    x2, x1 = torch.meshgrid(t, t, indexing="ij")
    points = torch.stack([x1.reshape(-1), x2.reshape(-1)], 1)
    with torch.no_grad():
        log_p = torch.cat([log_prob_fn(chunk).reshape(-1) for chunk in points.split(10000)])
    if log_p.shape != (n * n,):
        raise ValueError(f"log_prob_fn must return shape (batch,), got {tuple(log_p.shape)} in total")
    density = torch.exp(log_p.double()).nan_to_num(nan=0.0, posinf=0.0).reshape(n, n)
    return density.numpy(), t.double().numpy()


def density_heatmap(
    log_prob_fn: Callable[[Tensor], Tensor],
    *,
    bounds: tuple[float, float] = (-4, 4),
    n: int = 200,
    ax: Axes | None = None,
    dtype: torch.dtype = torch.float32,
) -> Figure:
    r"""Heatmap of :math:`p(x) = e^{\log p(x)}` over the square ``bounds``² (see :func:`density_grid`).

    Works for normalised densities and for unnormalised targets alike (``log_target`` of an energy): the
    colour scale is the density's own, from 0 to its maximum on the grid.

    >>> fig = density_heatmap(lambda x: -0.5 * (x**2).sum(1), n=20)
    >>> [a.get_xlabel() for a in fig.axes]
    ['$x_1$']
    >>> plt.close(fig)
    """
    density, t = density_grid(log_prob_fn, bounds=bounds, n=n, dtype=dtype)
    fig, ax = _axes(ax)
    ax.imshow(density, origin="lower", extent=(t[0], t[-1], t[0], t[-1]), cmap="viridis", aspect="equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("density")
    return fig


def scatter_samples(x: Tensor | np.ndarray, ax: Axes | None = None) -> Figure:
    """Scatter plot of 2-D samples ``x`` of shape ``(n, 2)``, equal aspect, small translucent points."""
    if isinstance(x, Tensor):
        check_batch(x, (2,), name="x")
    pts = _numpy(x, "x")
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"x must have shape ('batch', 2), got {pts.shape}")
    fig, ax = _axes(ax)
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, linewidths=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"{len(pts)} samples")
    return fig


def stages(flow: torch.nn.Module, z: Tensor, ax: Sequence[Axes] | None = None) -> Figure:
    r"""A row of panels following points ``z`` through a flow, base (left) to data (right).

    Panel 0 shows :math:`z \sim p_Z`; panel :math:`k` shows :math:`f_k \circ \dots \circ f_1(z)`, the points
    after layer :math:`k` in the base→data (forward) direction, from ``FlowSequence.stages``. So a flow of
    :math:`K` layers gives :math:`K + 1` panels (a single layer without ``stages`` gives 2). Points are
    coloured by the angle of their base position, so the colours show where each region of the base goes.
    ``ax``, if given, is a sequence of exactly that many axes.

    >>> from flowcourse.base import Flow, FlowSequence
    >>> class Shear(Flow):
    ...     def forward(self, z): return z + z[:, :1] * torch.tensor([0.0, 1.0]), z.new_zeros(len(z))
    >>> fig = stages(FlowSequence(Shear(), Shear()), torch.randn(50, 2))
    >>> len(fig.axes)
    3
    >>> plt.close(fig)
    """
    check_batch(z, (2,), name="z")
    with torch.no_grad():
        if hasattr(flow, "stages"):
            points = list(flow.stages(z))
        else:
            points = [z, flow(z)[0]]
    titles = ["base $z$"] + [f"after layer {k}" for k in range(1, len(points))]
    layers = getattr(flow, "layers", None)
    if layers is not None and len(layers) == len(points) - 1:
        titles[1:] = [f"{k}: {type(layer).__name__}" for k, layer in enumerate(layers, start=1)]
    if ax is None:
        size = (0.8 * PANEL * len(points), 0.8 * PANEL)
        fig, axes = plt.subplots(1, len(points), figsize=size, layout="constrained", squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(ax)
        if len(axes) != len(points):
            raise ValueError(f"ax must hold {len(points)} axes (base + one per layer), got {len(axes)}")
        fig = axes[0].figure
    colour = torch.atan2(z[:, 1], z[:, 0]).detach().cpu().numpy()
    for k, (a, p, title) in enumerate(zip(axes, points, titles, strict=True)):
        pts = _numpy(p, "stage")
        a.scatter(pts[:, 0], pts[:, 1], c=colour, cmap="hsv", s=3, linewidths=0)
        a.set_aspect("equal", adjustable="datalim")
        a.set_title(title, fontsize="small")
        a.set_xlabel("$z_1$" if k == 0 else "$x_1$")
        a.set_ylabel("$z_2$" if k == 0 else "$x_2$")
    return fig


def density_1d(
    xs: Tensor | np.ndarray,
    densities: Mapping[str, Tensor | np.ndarray | Callable[[Tensor], Tensor]],
    ax: Axes | None = None,
) -> Figure:
    r"""Line plot of one or more 1-D densities on the points ``xs``, one labelled line per entry.

    ``densities`` maps a legend label to the density values at ``xs`` (same length) or to a callable
    ``xs -> values`` (called on ``xs`` as a tensor). Values are densities :math:`p(x)`, not log-densities.

    >>> import math
    >>> xs = torch.linspace(-3, 3, 61)
    >>> fig = density_1d(xs, {"N(0,1)": torch.exp(-xs**2 / 2) / math.sqrt(2 * math.pi)})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['N(0,1)']
    >>> plt.close(fig)
    """
    grid = _numpy(xs, "xs").reshape(-1)
    if not isinstance(densities, Mapping) or not densities:
        raise TypeError(f"densities must be a non-empty dict label -> values, got {type(densities).__name__}")
    fig, ax = _axes(ax, width=1.5 * PANEL)
    for label, values in densities.items():
        if callable(values):
            with torch.no_grad():
                values = values(torch.as_tensor(grid))
        y = _numpy(values, f"densities[{label!r}]").reshape(-1)
        if y.shape != grid.shape:
            raise ValueError(f"densities[{label!r}] must have {grid.size} values (one per x), got {y.size}")
        ax.plot(grid, y, label=str(label))
    ax.set_xlabel("$x$")
    ax.set_ylabel("$p(x)$")
    ax.legend(fontsize="small")
    return fig


def mask_heatmaps(
    masks: Sequence[Tensor | np.ndarray],
    titles: Sequence[str] | None = None,
    axes: Sequence[Axes] | None = None,
    row_label: str = "output unit",
    column_label: str = "input unit",
) -> Figure:
    r"""Draw 0/1 (or small non-negative integer) matrices as heatmaps, one panel each, side by side.

    Each matrix is shaped like ``nn.Linear.weight``, ``(out_features, in_features)``: row ``k`` is a unit of
    this layer, column ``j`` a unit it reads, and a coloured cell means "may read" (a MADE mask, a coupling
    mask, or a product of masks that counts paths). Rows and columns are numbered from 1, as in the lessons'
    formulas. ``titles`` (one per matrix) label the panels; ``axes`` (one per matrix) draws on given axes.

    Reference: Germain et al. (2015), *MADE: Masked Autoencoder for Distribution Estimation*, Fig. 1.

    >>> fig = mask_heatmaps([torch.tensor([[1.0, 0.0], [1.0, 1.0]])], titles=["hidden"])
    >>> fig.axes[0].get_title()
    'hidden'
    >>> plt.close(fig)
    """
    from matplotlib.ticker import MaxNLocator

    matrices = [_numpy(m, f"masks[{i}]") for i, m in enumerate(masks)]
    if not matrices or any(m.ndim != 2 for m in matrices):
        raise ValueError("masks must be a non-empty sequence of 2-D matrices")
    if titles is not None and len(titles) != len(matrices):
        raise ValueError(f"titles must have one entry per mask ({len(matrices)}), got {len(titles)}")
    if axes is None:
        widths = [max(m.shape[1], 2) for m in matrices]
        width = min(2.2 * PANEL, 0.3 * sum(widths) + 1.2 * len(matrices)) + 1.0
        height = 0.3 * max(m.shape[0] for m in matrices) + 1.2
        fig, axes = plt.subplots(1, len(matrices), figsize=(width, height), layout="constrained",
                                 gridspec_kw={"width_ratios": widths}, squeeze=False)
        axes = list(axes[0])
    elif len(axes) != len(matrices):
        raise ValueError(f"axes must have one entry per mask ({len(matrices)}), got {len(axes)}")
    for i, (ax, m) in enumerate(zip(axes, matrices, strict=True)):
        rows, cols = m.shape
        vmax = max(1.0, float(m.max()))  # each panel its own scale: a 0/1 mask stays visible next to counts
        ax.imshow(m, cmap="Blues", vmin=0.0, vmax=1.25 * vmax, aspect="equal",
                  extent=(0.5, cols + 0.5, rows + 0.5, 0.5), interpolation="nearest")
        if vmax > 1:  # counts, not a 0/1 mask: write each non-zero count in its cell
            for (r, c), value in np.ndenumerate(m):
                if value:
                    ax.text(c + 1, r + 1, f"{value:g}", ha="center", va="center", fontsize="x-small",
                            color="white" if value > 0.6 * vmax else "black")
        ax.set_xticks(np.arange(1.5, cols, 1.0), minor=True)
        ax.set_yticks(np.arange(1.5, rows, 1.0), minor=True)
        ax.grid(which="minor", color="0.8", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(column_label, fontsize="small")
        ax.set_ylabel(row_label, fontsize="small")
        if titles is not None:
            ax.set_title(titles[i], fontsize="small")
    return axes[0].figure


def warped_grid(
    forward: Callable[[Tensor], tuple[Tensor, Tensor]],
    bounds: tuple[float, float] = (-2.5, 2.5),
    n_lines: int = 11,
    ax: Axes | None = None,
    base_log_prob: Callable[[Tensor], Tensor] | None = None,
    resolution: int = 121,
    vmax: float | None = None,
) -> Figure:
    r"""The square grid of the base plane drawn through a 2-D map, optionally over the density it produces.

    ``forward(z) -> (x, log|det ∂x/∂z|)`` maps base points of shape ``(batch, 2)`` (the course convention;
    the identity ``lambda z: (z, z.new_zeros(len(z)))`` draws the base grid itself). The ``n_lines``
    straight lines :math:`z_1 = c` and :math:`z_2 = c`, :math:`c` in ``bounds``, are drawn as their images
    :math:`f(\text{line})`, so each cell of the picture is the image of a square cell of the base: its area
    is :math:`|\det J_f|` times the square's. With ``base_log_prob`` the picture is shaded by the pushed-forward
    density :math:`p_X(f(z)) = p_Z(z)\,/\,|\det J_f(z)|`, evaluated in the forward direction (no inverse
    needed), on the image of the square ``bounds`` × ``bounds``; ``vmax`` fixes the top of the colour scale so
    that two panels can share it.

    >>> fig = warped_grid(lambda z: (2 * z, z.new_full((len(z),), 2 * np.log(2.0))), n_lines=5)
    >>> len(fig.axes)
    1
    >>> plt.close(fig)
    """
    if n_lines < 2 or resolution < 2:
        raise ValueError(f"n_lines and resolution must be at least 2, got {n_lines} and {resolution}")
    fig, ax = _axes(ax)
    lo, hi = float(bounds[0]), float(bounds[1])
    fine = torch.linspace(lo, hi, resolution, dtype=torch.float64)
    with torch.no_grad():
        if base_log_prob is not None:
            z1, z2 = torch.meshgrid(fine, fine, indexing="ij")
            z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)
            x, logdet = forward(z)
            check_batch(x, (2,), name="forward(z)[0]")
            density = (base_log_prob(z) - logdet).exp().reshape(resolution, resolution)
            x = _numpy(x, "x").reshape(resolution, resolution, 2)
            mesh = ax.pcolormesh(x[..., 0], x[..., 1], _numpy(density, "density"), shading="gouraud",
                                 cmap="viridis", vmin=0.0, vmax=vmax)
            fig.colorbar(mesh, ax=ax, shrink=0.8, label="density")
        for c in np.linspace(lo, hi, n_lines):
            const = torch.full_like(fine, float(c))
            for line in (torch.stack([const, fine], dim=1), torch.stack([fine, const], dim=1)):
                pts = _numpy(forward(line)[0], "forward(z)[0]")
                ax.plot(pts[:, 0], pts[:, 1], color="white" if base_log_prob is not None else "C0",
                        linewidth=0.7)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return fig


def multiscale_diagram(
    shape: tuple[int, int, int] = (1, 8, 8), levels: int = 2, steps: int = 4, ax: Axes | None = None
) -> Figure:
    r"""Draw a multi-scale flow (Dinh et al. 2017; Kingma & Dhariwal 2018) read data→base, left to right.

    Each tensor is drawn as a stack of ``C`` panels of ``H x W`` pixels. Every level squeezes
    (``C x H x W -> 4C x H/2 x W/2``), runs ``steps`` steps of flow, then factors out the first half of the
    channels (orange: they go to the Gaussian base) and passes the rest on; the last level sends everything
    to the base. ``shape`` is ``(C, H, W)`` with ``H`` and ``W`` divisible by ``2**levels``.

    >>> fig = multiscale_diagram((1, 8, 8), levels=2, steps=4)
    >>> plt.close(fig)
    """
    from matplotlib.patches import Rectangle

    c, h, w = (int(v) for v in shape)
    if levels < 1 or h % 2**levels or w % 2**levels:
        raise ValueError(f"shape {tuple(shape)} cannot be squeezed {levels} times: H and W must be divisible by "
                         f"2**levels")
    unit, offset, gap = 0.16, 0.09, 1.05
    kept_colour, out_colour = "#9ecae1", "#fdae6b"

    def stack(x0: float, channels: int, height: int, width: int, n_out: int = 0) -> tuple[float, float]:
        """Draw a stack at x0 (bottom-left of the front panel at y = 0); return its right edge and top."""
        for k in reversed(range(channels)):
            colour = out_colour if k < n_out else kept_colour
            ax.add_patch(Rectangle((x0 + k * offset, k * offset), width * unit, height * unit,
                                   facecolor=colour, edgecolor="0.3", linewidth=0.6))
        for i in range(1, height):  # the front panel's pixel grid
            ax.plot([x0, x0 + width * unit], [i * unit, i * unit], color="0.3", linewidth=0.25)
        for j in range(1, width):
            ax.plot([x0 + j * unit, x0 + j * unit], [0, height * unit], color="0.3", linewidth=0.25)
        ax.text(x0 + (width * unit + (channels - 1) * offset) / 2, -0.22, f"{channels}×{height}×{width}",
                ha="center", va="top", fontsize=9)
        return x0 + width * unit + (channels - 1) * offset, height * unit + (channels - 1) * offset

    def arrow(x0: float, label: str, y: float = 0.35) -> float:
        ax.annotate("", xy=(x0 + gap - 0.1, y), xytext=(x0 + 0.1, y),
                    arrowprops={"arrowstyle": "->", "color": "0.2"})
        ax.text(x0 + gap / 2, y + 0.08, label, ha="center", va="bottom", fontsize=8)
        return x0 + gap

    fig, ax = _axes(ax, width=2.2 + 2.9 * levels, height=2.6)
    x, top = stack(0.0, c, h, w)
    highest = top
    for level in range(1, levels + 1):
        start = x
        x = arrow(x, "squeeze")
        c, h, w = 4 * c, h // 2, w // 2
        x, top = stack(x, c, h, w)
        x = arrow(x, f"{steps} steps")
        last = level == levels
        right, top = stack(x, c, h, w, n_out=c if last else c // 2)
        centre = x + (w * unit) / 2
        label = "all to the Gaussian" if last else f"{c // 2}×{h}×{w} to the Gaussian"
        ax.annotate("", xy=(centre, -0.95), xytext=(centre, -0.4), arrowprops={"arrowstyle": "->", "color": "0.2"})
        ax.text(centre, -1.0, f"{label}\n$\\mathcal{{N}}(0, I)$", ha="center", va="top", fontsize=8)
        highest = max(highest, top)
        ax.text((start + right) / 2, 1.75, f"level {level}", ha="center", va="bottom", fontsize=9,
                fontweight="bold")
        ax.plot([start + 0.1, right], [1.7, 1.7], color="0.5", linewidth=0.8)
        x = right
        if not last:
            x = arrow(x, "keep half")
            c = c // 2
            x, top = stack(x, c, h, w)
    ax.set_xlim(-0.2, x + 0.3)
    ax.set_ylim(-1.7, 2.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("data → base: squeeze, steps of flow, factor out half", fontsize=10)
    return fig
