r"""The answer key against the public flow libraries (issue 7, part 1): ``python -m benchmarks.peers [--quick]``.

Cases, each timed on one torch thread with every library interleaved round-robin (:mod:`benchmarks.timing`):

* **RealNVP**, 8 affine couplings on :math:`d = 2` and :math:`d = 64`: one training step (``log_prob`` of a
  batch of 4096, backward, Adam step). Every library gets the same conditioner, an MLP with two hidden
  ReLU layers of 64 (zuko builds that MLP itself; the others get :func:`mlp`), and the kept and the
  transformed half swap from one coupling to the next (first and second half of the coordinates; zuko's
  NICE alternates even and odd coordinates, its only choice).
* **Planar**, 32 tanh layers on :math:`d = 2`, one reverse-KL training step on 4096 samples (normflows only:
  zuko, nflows and FrEIA have no planar layer).
* **log|det W|** of a :math:`C\times C` 1×1-convolution weight, forward and backward, for
  :math:`C = 3 \dots 512`: each library's LU form (:math:`\sum_i \log|U_{ii}|`) and its dense form
  (``slogdet``), as each library computes it.
* **MAF** on :math:`d = 16` (MADE 64-64): ``log_prob`` (one network pass) and ``sample`` (:math:`d` passes) of
  4096 points, without gradients.

* **RQ spline coupling** (lesson 09) on :math:`d = 2` and :math:`d = 64`: one training step (``log_prob`` of a
  batch of 4096, backward, Adam step) of one coupling layer, :math:`K = 8` bins on :math:`[-3, 3]`, identity
  tails, conditioner :func:`mlp` on the kept (even) coordinates — nflows' ``PiecewiseRationalQuadratic
  CouplingTransform`` and zuko's ``GeneralCouplingTransform`` with ``MonotonicRQSTransform`` (:func:`spline_coupling`).
* **RQ spline inverse** with its log-det, :math:`4096 \times 16` points each with its own spline, from the same
  unnormalised parameters, without gradients (:func:`spline_inverse`).
* **CNF log-likelihood** (lesson 10) of 1024 two-moons points: lesson 10's ``cnf_log_prob`` (10 RK4 steps, the
  lesson's) against zuko's ``CNF`` (adaptive Dormand–Prince) on the same trained field, exact divergence in
  both, zuko at the loosest tolerance at which it is at least as accurate (:func:`matched_tolerance`).

Each row lists each library's median ms and the ratio reference / fastest peer (goal: at most 1.0). A library
that is not installed is reported as ``missing``; one without such a layer as ``n/a``. Install the peers with
``pip install -c benchmarks/constraints.txt -e '.[bench]'`` (``make venv`` installs them): the constraints keep torch.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from flowcourse_lessons.lesson_01.key import standard_normal_log_prob
from flowcourse_lessons.lesson_02.key import MAF
from flowcourse_lessons.lesson_03.key import RealNVP, half_masks
from flowcourse_lessons.lesson_04.key import LUInvertible1x1Conv, conv1x1_logdet, lu_logdet
from flowcourse_lessons.lesson_05.key import Planar
from flowcourse_lessons.lesson_09.key import SplineCoupling, rq_spline
from flowcourse_lessons.lesson_10.key import VelocityField, cnf_log_prob, flow_matching_loss
from torch import Tensor, nn

from benchmarks.timing import calibrate, interleaved_samples, load, machine, paired_ratio, print_table
from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
from flowcourse.training import single_thread

REFERENCE = "reference"
PEERS = ("zuko", "normflows", "nflows", "FrEIA")
LIBRARIES = (REFERENCE, *PEERS)
MISSING = "missing"
NOT_AVAILABLE = "n/a"

BATCH = 4096
HIDDEN = 64
COUPLINGS = 8
PLANAR_LAYERS = 32
MAF_D = 16
LOGDET_CHANNELS = (3, 8, 32, 128, 512)
SPLINE_BINS = 8  # lesson 09's K
SPLINE_BOUND = 3.0  # lesson 09's B (zuko's NSF default is 5, nflows' 1: both set to 3 here)
SPLINE_DIMS = (2, 64)  # two moons and the digits, the lesson's two data sets
SPLINE_INVERSE_D = 16
CNF_STEPS = 10  # RK4 steps of lesson 10's cnf_log_prob, as the lesson evaluates its held-out likelihood
CNF_TRAIN_STEPS = 400  # flow-matching steps that give the timed CNF realistic dynamics
CNF_POINTS = 1024  # points whose log-likelihood is timed (40 field evaluations with 2 backward passes each)
#: zuko's (atol, rtol), loosest first, half a decade apart; its default is (1e-6, 1e-5)
CNF_TOLERANCES = tuple((a / 10, a) for a in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7))

Step = Callable[[], object]


def installed(library: str) -> bool:
    """Whether a library can be imported (the reference always can)."""
    return library == REFERENCE or importlib.util.find_spec(library) is not None


def mlp(d_in: int, d_out: int, hidden: int = HIDDEN) -> nn.Sequential:
    """The conditioner every library gets: ``d_in → hidden → hidden → d_out`` with ReLU (as the reference's)."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))


class ContextFreeMLP(nn.Sequential):
    """:func:`mlp` for nflows, which calls its conditioner as ``net(x, context)``."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(x)


# ------------------------------------------------------------------------------------------------ RealNVP

LogProb = Callable[[Tensor], Tensor]


def realnvp(library: str, d: int, n_layers: int = COUPLINGS, hidden: int = HIDDEN) -> tuple[nn.Module, LogProb]:
    """A RealNVP of ``n_layers`` affine couplings on ``R^d`` in ``library``: ``(module, log_prob)``.

    Coupling ``k`` keeps one half and transforms the other, the halves swapping from one coupling to the
    next; the conditioner is :func:`mlp` (zuko: its own identical MLP). ``d`` must be even. Log-scales are
    bounded as each library does by default: reference ``2 tanh(a/2)``, FrEIA ``2 tanh(a)``, zuko
    ``a / (1 + |a| / 6.9)``, nflows ``log(sigmoid(a + 2) + 1e-3)``, normflows unbounded ``a``.
    """
    if library == REFERENCE:
        dist = FlowDistribution(RealNVP(d, n_layers, hidden), StandardNormal(d))
        return dist, dist.log_prob
    if library == "normflows":
        import normflows as nf

        half = d // 2
        # channel / channel_inv: chunk and cat, the halves swapping without a permutation layer
        flows = [nf.flows.AffineCouplingBlock(mlp(half, 2 * (d - half), hidden),
                                              split_mode="channel" if k % 2 == 0 else "channel_inv")
                 for k in range(n_layers)]
        model = nf.NormalizingFlow(nf.distributions.DiagGaussian(d, trainable=False), flows)
        return model, model.log_prob
    if library == "nflows":
        from nflows.distributions import StandardNormal as NflowsNormal
        from nflows.flows import Flow as NflowsFlow
        from nflows.transforms import AffineCouplingTransform, CompositeTransform

        # nflows' mask: 1 marks the transformed features, so the complement of the reference's kept half
        couplings = [AffineCouplingTransform((1 - mask).int(), lambda a, b: ContextFreeMLP(*mlp(a, b, hidden)))
                     for mask in half_masks(d, n_layers)]
        model = NflowsFlow(CompositeTransform(couplings), NflowsNormal([d]))
        return model, model.log_prob
    if library == "zuko":
        import zuko

        model = zuko.flows.NICE(d, transforms=n_layers, hidden_features=(hidden, hidden))
        return model, lambda x: model().log_prob(x)
    if library == "FrEIA":
        import FrEIA.framework as Ff
        import FrEIA.modules as Fm

        model = Ff.SequenceINN(d)
        for _ in range(n_layers // 2):  # a GLOW coupling block is two couplings, one per half
            model.append(Fm.GLOWCouplingBlock, subnet_constructor=lambda a, b: mlp(a, b, hidden), clamp=2.0,
                         clamp_activation="TANH")

        def log_prob(x: Tensor) -> Tensor:
            z, log_jac = model(x)
            return standard_normal_log_prob(z) + log_jac

        return model, log_prob
    raise ValueError(f"unknown library {library!r}, expected one of {LIBRARIES}")


def training_step(module: nn.Module, loss: Callable[[], Tensor]) -> Step:
    """One Adam step on ``loss()``: zero the gradients, backward, step."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    return step


def realnvp_step(library: str, d: int) -> Step:
    """A maximum-likelihood training step of :func:`realnvp` on a fixed batch of 4096 points."""
    module, log_prob = realnvp(library, d)
    x = torch.randn(BATCH, d, generator=torch.Generator().manual_seed(0))
    return training_step(module, lambda: -log_prob(x).mean())


# ------------------------------------------------------------------------------------------------- planar

def planar(library: str, d: int = 2, n_layers: int = PLANAR_LAYERS) -> tuple[nn.Module, Callable[[int], Tensor]]:
    """``n_layers`` tanh planar layers (invertible û form) in ``library``: ``(module, reverse_kl(n))``.

    ``reverse_kl(n)`` samples ``n`` points and returns :math:`\\mathbb{E}[\\log q(x) - \\log p(x)]` with a
    standard normal target :math:`p`.
    """
    if library == REFERENCE:
        dist = FlowDistribution(FlowSequence(*[Planar(d) for _ in range(n_layers)]), StandardNormal(d))

        def reverse_kl(n: int) -> Tensor:
            x, log_q = dist.sample_and_log_prob(n)
            return (log_q - standard_normal_log_prob(x)).mean()

        return dist, reverse_kl
    if library == "normflows":
        import normflows as nf

        class Target(nn.Module):
            def log_prob(self, z: Tensor) -> Tensor:
                return standard_normal_log_prob(z)

        model = nf.NormalizingFlow(nf.distributions.DiagGaussian(d, trainable=False),
                                   [nf.flows.Planar((d,)) for _ in range(n_layers)], p=Target())
        return model, model.reverse_kld
    raise NotImplementedError(f"{library} has no planar layer")


def planar_step(library: str) -> Step:
    """A reverse-KL training step of :func:`planar` on 4096 fresh samples."""
    module, reverse_kl = planar(library)
    return training_step(module, lambda: reverse_kl(BATCH))


# ----------------------------------------------------------------------------------------------- log-dets

def lu_logdet_fn(library: str, channels: int) -> Callable[[], Tensor]:
    """``log|det W|`` of an LU-parametrised ``C×C`` weight, as ``library`` computes it (a closure)."""
    if library == REFERENCE:
        layer = LUInvertible1x1Conv(channels)
        return lambda: lu_logdet(layer.log_abs_s, 1, 1)
    if library == "normflows":
        import normflows as nf

        nf_layer = nf.flows.Invertible1x1Conv(channels, use_lu=True)
        return lambda: torch.sum(nf_layer.log_S) * 1 * 1  # Invertible1x1Conv.inverse's: sum(log S) * h * w
    if library == "nflows":
        from nflows.transforms import LULinear

        return LULinear(channels).logabsdet
    if library == "zuko":
        from zuko.transforms import LULinearTransform

        lu = nn.Parameter(torch.linalg.lu_factor(torch.randn(channels, channels)).LU)
        x = torch.zeros(1, channels)
        return lambda: LULinearTransform(lu).log_abs_det_jacobian(x, x).sum()
    raise NotImplementedError(f"{library} has no LU-parametrised linear layer")


def dense_logdet_fn(library: str, channels: int) -> Callable[[], Tensor]:
    """``log|det W|`` of a dense ``C×C`` weight (``slogdet``), as ``library`` computes it (a closure)."""
    if library == REFERENCE:
        weight = nn.Parameter(torch.linalg.qr(torch.randn(channels, channels)).Q)
        return lambda: conv1x1_logdet(weight, 1, 1)
    if library == "normflows":
        import normflows as nf

        nf_layer = nf.flows.Invertible1x1Conv(channels, use_lu=False)
        return lambda: torch.slogdet(nf_layer.W)[1] * 1 * 1  # Invertible1x1Conv.inverse's, h = w = 1
    if library == "nflows":
        from nflows.transforms import NaiveLinear

        return NaiveLinear(channels).logabsdet
    raise NotImplementedError(f"{library} has no dense linear layer with a log-det")


def with_backward(logdet: Callable[[], Tensor]) -> Step:
    """Forward and backward of a log-det, as a training step pays them."""
    return lambda: logdet().backward()


def slogdet_float32_error(channels: int = 512, spread: float = 6.0, seed: int = 0) -> float:
    r"""Nats by which float32 ``slogdet`` misses :math:`\log|\det W|` of an ill-conditioned :math:`W = PLU`.

    :math:`U_{ii} = e^{\pm\text{spread}}` alternating in sign of the exponent (condition number
    :math:`\sim e^{2\,\text{spread}}`), unit-lower :math:`L` and unit-upper part of :math:`U` random; the
    exact value is :math:`\sum_i \log|U_{ii}|`, which is what the LU form returns.
    """
    g = torch.Generator().manual_seed(seed)
    log_diag = spread * torch.linspace(-1, 1, channels, dtype=torch.float64)
    lower = torch.tril(torch.randn(channels, channels, generator=g, dtype=torch.float64), -1) / math.sqrt(channels)
    upper = torch.triu(torch.randn(channels, channels, generator=g, dtype=torch.float64), 1) / math.sqrt(channels)
    L = lower + torch.eye(channels, dtype=torch.float64)
    U = upper + torch.diag(log_diag.exp())
    W = (L @ U)[torch.randperm(channels, generator=g)]
    exact = float(log_diag.sum())
    return abs(float(torch.linalg.slogdet(W.float()).logabsdet) - exact)


# -------------------------------------------------------------------------------------------------- MAF

def maf(library: str, d: int = MAF_D, hidden: int = HIDDEN) -> tuple[nn.Module, LogProb, Callable[[int], Tensor]]:
    """A one-layer MAF (MADE ``hidden``-``hidden``) in ``library``: ``(module, log_prob, sample)``."""
    if library == REFERENCE:
        dist = FlowDistribution(MAF(d, (hidden, hidden)), StandardNormal(d))
        return dist, dist.log_prob, dist.sample
    if library == "zuko":
        import zuko

        model = zuko.flows.MAF(d, transforms=1, hidden_features=(hidden, hidden))
        return model, lambda x: model().log_prob(x), lambda n: model().sample((n,))
    if library == "nflows":
        from nflows.distributions import StandardNormal as NflowsNormal
        from nflows.flows import Flow as NflowsFlow
        from nflows.transforms import MaskedAffineAutoregressiveTransform

        # initial layer + 1 block = two hidden layers, plain (not residual) like the others
        made = MaskedAffineAutoregressiveTransform(d, hidden, num_blocks=1, use_residual_blocks=False)
        model = NflowsFlow(made, NflowsNormal([d]))
        return model, model.log_prob, model.sample
    if library == "normflows":
        import normflows as nf

        made = nf.flows.MaskedAffineAutoregressive(d, hidden, num_blocks=1, use_residual_blocks=False)
        model = nf.NormalizingFlow(nf.distributions.DiagGaussian(d, trainable=False), [made])
        return model, model.log_prob, lambda n: model.sample(n)[0]
    raise NotImplementedError(f"{library} has no MAF")


def maf_fn(library: str, what: str) -> Step:
    """``log_prob`` of 4096 points or ``sample`` of 4096 points of :func:`maf`, without gradients."""
    _, log_prob, sample = maf(library)
    x = torch.randn(BATCH, MAF_D, generator=torch.Generator().manual_seed(0))

    def run() -> None:
        with torch.no_grad():
            log_prob(x) if what == "log_prob" else sample(BATCH)

    return run


# ------------------------------------------------------------------------------------ splines (lesson 09)

def _keep_even(d: int) -> Tensor:
    """Lesson 09's default coupling mask: 1 keeps the even coordinates, 0 moves the odd ones."""
    return (torch.arange(d) % 2 == 0).to(torch.get_default_dtype())


def spline_coupling(library: str, d: int, hidden: int = HIDDEN, bins: int = SPLINE_BINS,
                    bound: float = SPLINE_BOUND) -> tuple[nn.Module, LogProb]:
    """One rational-quadratic spline coupling layer on ``R^d`` in ``library``: ``(module, log_prob)``.

    Equal configuration in every library: the even coordinates kept and the odd ones moved, the conditioner
    :func:`mlp` (``n_kept → hidden → hidden → n_moved·(3K − 1)``, ReLU; zuko builds the same MLP itself) whose
    output is read as ``(n_moved, K widths, K heights, K − 1 interior derivatives)``, ``K = bins`` bins on
    ``[−bound, bound]`` with identity (linear) tails, a standard normal base. Each library evaluates the density
    its own way: lesson 09's layer maps base→data with the spline, so its ``log_prob`` runs the spline
    *inverse*; nflows' and zuko's layers map data→base, so theirs run the spline forward.
    """
    keep = _keep_even(d)
    if library == REFERENCE:
        dist = FlowDistribution(SplineCoupling(d, hidden=hidden, bins=bins, bound=bound, mask=keep), StandardNormal(d))
        return dist, dist.log_prob
    if library == "nflows":
        from nflows.distributions import StandardNormal as NflowsNormal
        from nflows.flows import Flow as NflowsFlow
        from nflows.transforms import PiecewiseRationalQuadraticCouplingTransform

        # nflows' mask: 1 marks the moved features; its default minimum widths, heights and derivative are
        # 1e-3, as lesson 09's. A conditioner without ``hidden_features`` keeps the raw widths (no 1/√hidden).
        coupling = PiecewiseRationalQuadraticCouplingTransform(
            (1 - keep).int(), lambda a, b: ContextFreeMLP(*mlp(a, b, hidden)), num_bins=bins, tails="linear",
            tail_bound=bound)
        model = NflowsFlow(coupling, NflowsNormal([d]))
        return model, model.log_prob
    if library == "zuko":
        from functools import partial

        from zuko.distributions import DiagNormal
        from zuko.flows import Flow as ZukoFlow
        from zuko.flows.coupling import GeneralCouplingTransform
        from zuko.lazy import UnconditionalDistribution
        from zuko.transforms import MonotonicRQSTransform

        # zuko's coupling (the one NSF uses with passes=2, but with a dense MLP on the kept half like the
        # others, not a masked MLP on all d inputs): True in zuko's mask marks the kept features
        coupling = GeneralCouplingTransform(d, mask=keep.bool(), univariate=partial(MonotonicRQSTransform, bound=bound),
                                            shapes=[(bins,), (bins,), (bins - 1,)], hidden_features=(hidden, hidden))
        model = ZukoFlow(coupling, UnconditionalDistribution(DiagNormal, torch.zeros(d), torch.ones(d), buffer=True))
        return model, lambda x: model().log_prob(x)
    raise NotImplementedError(f"{library} has no rational-quadratic spline coupling")


def spline_coupling_step(library: str, d: int) -> Step:
    """A maximum-likelihood training step of :func:`spline_coupling` on a fixed batch of 4096 points."""
    module, log_prob = spline_coupling(library, d)
    x = 1.5 * torch.randn(BATCH, d, generator=torch.Generator().manual_seed(0))
    return training_step(module, lambda: -log_prob(x).mean())


def spline_parameters(n: int = BATCH, d: int = SPLINE_INVERSE_D, bins: int = SPLINE_BINS,
                      seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(y, widths, heights, derivatives)``: ``n × d`` points (about 5% in the tails of ``[−3, 3]``) and a random
    spline for each, unnormalised parameters of shapes ``(n, d, K)``, ``(n, d, K)``, ``(n, d, K − 1)``."""
    g = torch.Generator().manual_seed(seed)
    y = 1.5 * torch.randn(n, d, generator=g)
    return (y, torch.randn(n, d, bins, generator=g), torch.randn(n, d, bins, generator=g),
            torch.randn(n, d, bins - 1, generator=g))


def spline_inverse(library: str, bound: float = SPLINE_BOUND) -> Callable[..., tuple[Tensor, Tensor]]:
    """``inverse(y, widths, heights, derivatives) -> (x, log|dx/dy|)``: the rational-quadratic spline inverse
    with identity tails, from unnormalised parameters, as ``library`` computes it.

    Reference and nflows take the same parameters to the same knots (softmax with minimum bin size 1e-3,
    softplus derivatives ≥ 1e-3, boundary derivatives 1). zuko parametrises the same spline differently (no
    minimum bin size, soft-clamped exponential derivatives): same knots, same formulas, other raw numbers. zuko
    computes an inverse's log-det the generic way, by running the forward spline at the inverse's output.
    """
    if library == REFERENCE:
        return lambda y, w, h, d: rq_spline(y, w, h, d, bound=bound, inverse=True)
    if library == "nflows":
        from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline

        return lambda y, w, h, d: unconstrained_rational_quadratic_spline(y, w, h, d, inverse=True, tails="linear",
                                                                          tail_bound=bound)
    if library == "zuko":
        from zuko.transforms import MonotonicRQSTransform

        return lambda y, w, h, d: MonotonicRQSTransform(w, h, d, bound=bound).inv.call_and_ladj(y)
    raise NotImplementedError(f"{library} has no rational-quadratic spline")


def spline_inverse_fn(library: str) -> Step:
    """The spline inverse with its log-det on 4096 × 16 points, each with its own spline, without gradients."""
    inverse = spline_inverse(library)
    args = spline_parameters()

    def run() -> None:
        with torch.no_grad():
            inverse(*args)

    return run


# -------------------------------------------------------------------------------- continuous flows (lesson 10)

@functools.cache
def cnf_problem(d: int = 2, hidden: int = HIDDEN, steps: int = CNF_TRAIN_STEPS) -> tuple[VelocityField, Tensor]:
    """``(field, x)``: lesson 10's ``VelocityField(2, 64)`` trained by flow matching on two moons (seed 0, Adam
    5e-3, batch 256, ``steps`` steps: realistic, curved dynamics, not a network at its initialisation) and the
    ``CNF_POINTS`` held-out-style points whose log-likelihood is timed (two moons, seed 2). Cached: every library gets
    the same field."""
    from flowcourse.continuous import fit
    from flowcourse.data import two_moons

    torch.manual_seed(0)
    field = VelocityField(d, hidden=hidden).float()
    fit(field, two_moons(4000, seed=0).float(), flow_matching_loss, steps=steps, lr=5e-3)
    field.requires_grad_(False)
    return field, two_moons(CNF_POINTS, seed=2).float()


def zuko_cnf(field: VelocityField, atol: float, rtol: float) -> nn.Module:
    """zuko's ``CNF`` (adaptive Dormand–Prince, exact trace) whose dynamics are ``field``.

    zuko's network would be an MLP of the same size (3 hidden layers of 64, here SiLU as lesson 10's) but fed
    sin/cos time features; to compare the solvers and not two networks, its ``f`` is replaced by lesson 10's
    field, time reversed into zuko's convention (data at t = 0, base at t = 1): ``f(t, x) = −v(x, 1 − t)``.
    """
    import zuko

    model = zuko.flows.CNF(field.dim, freqs=1, atol=atol, rtol=rtol, hidden_features=(HIDDEN,) * 3,
                           activation=nn.SiLU)
    model.transform.f = lambda t, x, c=None: -field(x, 1 - t)
    return model.eval()


def cnf_log_prob_fn(library: str, tolerance: tuple[float, float] | None = None) -> Callable[[Tensor], Tensor]:
    """``log_prob(x)`` of :func:`cnf_problem`'s CNF, as ``library`` evaluates it, without gradients.

    Reference: lesson 10's ``cnf_log_prob`` with ``CNF_STEPS`` RK4 steps (4 field evaluations each, exact
    divergence by ``d`` backward passes). zuko: :func:`zuko_cnf` at ``tolerance = (atol, rtol)``, by default the
    loosest of :data:`CNF_TOLERANCES` at which it is at least as accurate as the reference
    (:func:`matched_tolerance`).
    """
    field, _ = cnf_problem()
    if library == REFERENCE:
        return lambda x: cnf_log_prob(field, x, steps=CNF_STEPS)
    if library == "zuko":
        atol, rtol = tolerance or matched_tolerance()
        model = zuko_cnf(field, atol, rtol)
        return lambda x: model().log_prob(x)
    raise NotImplementedError(f"{library} has no continuous normalizing flow")


@functools.cache
def cnf_truth() -> Tensor:
    """The exact log-likelihood of :func:`cnf_problem`'s points, to float64 rounding: lesson 10's ``cnf_log_prob``
    in float64 with 100 RK4 steps (its error, :math:`O(h^4)`, is about 10^4 times below that of 10 steps)."""
    field, x = cnf_problem()
    with torch.no_grad():
        return cnf_log_prob(copy.deepcopy(field).double(), x.double(), steps=100)


@functools.cache
def cnf_accuracy(library: str, tolerance: tuple[float, float] | None = None) -> tuple[float, int]:
    """``(max |error| in nats, field evaluations)`` of :func:`cnf_log_prob_fn` on :func:`cnf_problem`'s points
    against :func:`cnf_truth`."""
    if library == "zuko" and tolerance is None:
        tolerance = matched_tolerance()
    field, x = cnf_problem()
    truth = cnf_truth()
    log_prob = cnf_log_prob_fn(library, tolerance)
    calls = 0
    forward = field.forward

    def counted(*args: object) -> Tensor:
        nonlocal calls
        calls += 1
        return forward(*args)

    field.forward = counted
    try:
        with torch.no_grad():
            got = log_prob(x)
    finally:
        del field.forward
    return float((got.double() - truth).abs().max()), calls


@functools.cache
def matched_tolerance() -> tuple[float, float]:
    """The loosest ``(atol, rtol)`` of :data:`CNF_TOLERANCES` at which zuko's log-likelihood is at least as
    accurate as the reference's (max error over the batch), the tightest if none is."""
    target, _ = cnf_accuracy(REFERENCE)
    for tolerance in CNF_TOLERANCES:
        if cnf_accuracy("zuko", tolerance)[0] <= target:
            return tolerance
    return CNF_TOLERANCES[-1]


def cnf_note() -> str:
    """The CNF row's configuration: each solver's field evaluations and error against :func:`cnf_truth`."""
    ref_error, ref_calls = cnf_accuracy(REFERENCE)
    atol, rtol = matched_tolerance()
    zuko_error, zuko_calls = cnf_accuracy("zuko")
    return (f"CNF row: the same field (lesson 10's VelocityField(2, 64), flow matching {CNF_TRAIN_STEPS} steps on two "
            f"moons) in both, exact divergence;\nreference cnf_log_prob, {CNF_STEPS} RK4 steps: {ref_calls} field "
            f"evaluations, max error {ref_error:.1e} nats; zuko CNF, adaptive Dormand-Prince at the loosest\n"
            f"tolerance at least as accurate (atol {atol:.0e}, rtol {rtol:.0e}): {zuko_calls} field evaluations, "
            f"max error {zuko_error:.1e} nats (truth: float64, 100 RK4 steps).")


def cnf_fn(library: str, tolerance: tuple[float, float] | None = None) -> Step:
    """The log-likelihood of :func:`cnf_problem`'s ``CNF_POINTS`` points, without gradients."""
    log_prob = cnf_log_prob_fn(library, tolerance)
    _, x = cnf_problem()

    def run() -> None:
        with torch.no_grad():
            log_prob(x)

    return run


# ------------------------------------------------------------------------------------------------- cases

@dataclass
class Case:
    """One row: a name and, per library, a builder of the zero-argument function that is timed."""

    name: str
    build: Callable[[str], Step]
    calibrate: bool = False  # µs-scale work: time many calls per sample
    unlike: tuple[str, ...] = ()  # libraries shown in parentheses and left out of the ratio: other work
    results: dict[str, float | str] = field(default_factory=dict)  # median ms, or why there is none
    samples: dict[str, list[float]] = field(default_factory=dict)  # ms in each interleaved round


def cases(quick: bool = False) -> list[Case]:
    """The benchmark cases, in the order they are printed (``quick``: fewer channel counts)."""
    out = [
        Case("RealNVP 8 couplings d=2, train step", lambda lib: realnvp_step(lib, 2)),
        Case("RealNVP 8 couplings d=64, train step", lambda lib: realnvp_step(lib, 64)),
        Case("planar 32 layers d=2, reverse-KL step", planar_step),
    ]
    for c in (3, 32, 512) if quick else LOGDET_CHANNELS:
        out.append(Case(f"LU log|det W| C={c}, fwd+bwd", lambda lib, c=c: with_backward(lu_logdet_fn(lib, c)),
                        calibrate=True))
        out.append(Case(f"slogdet log|det W| C={c}, fwd+bwd",
                        lambda lib, c=c: with_backward(dense_logdet_fn(lib, c)), calibrate=True))
    out += [
        Case(f"MAF d={MAF_D} log_prob, no grad", lambda lib: maf_fn(lib, "log_prob"), unlike=("normflows",)),
        Case(f"MAF d={MAF_D} sample, no grad", lambda lib: maf_fn(lib, "sample"), unlike=("normflows",)),
    ]
    out += [Case(f"RQ spline coupling d={d} K={SPLINE_BINS}, train step", lambda lib, d=d: spline_coupling_step(lib, d))
            for d in SPLINE_DIMS]
    out += [
        Case(f"RQ spline inverse+log-det {BATCH}x{SPLINE_INVERSE_D}, no grad", spline_inverse_fn),
        Case(f"CNF log p d=2, {CNF_POINTS} points, equal accuracy", cnf_fn),
    ]
    return out


def run_case(case: Case, repeats: int) -> dict[str, float | str]:
    """Time ``case`` in every installed library, interleaved; missing libraries and layers are marked."""
    steps: dict[str, Step] = {}
    for lib in LIBRARIES:
        if not installed(lib):
            case.results[lib] = MISSING
            continue
        try:
            steps[lib] = case.build(lib)
        except NotImplementedError:
            case.results[lib] = NOT_AVAILABLE
    torch.manual_seed(0)
    numbers = {lib: calibrate(fn, min_seconds=10e-3) for lib, fn in steps.items()} if case.calibrate else None
    case.samples = interleaved_samples(steps, repeats, warmup=2, numbers=numbers)
    medians = {lib: statistics.median(ms) for lib, ms in case.samples.items()}
    case.results.update({lib: f"({ms:.3g})" if lib in case.unlike else ms for lib, ms in medians.items()})
    return case.results


def ratio(case: Case) -> float | None:
    """Reference over the fastest peer (lowest median), round by round, the median of those ratios.

    ``None`` when no peer was timed. Pairing rounds cancels the machine's drift between them.
    """
    peers = [lib for lib, v in case.results.items() if lib != REFERENCE and isinstance(v, float)]
    if not peers or not isinstance(case.results.get(REFERENCE), float):
        return None
    best = min(peers, key=lambda lib: case.results[lib])
    return paired_ratio(case.samples[REFERENCE], case.samples[best])


def row(case: Case) -> list[object]:
    """A table row: the case, each library's median ms (or why there is none), the ratio."""
    r = ratio(case)
    return [case.name, *(case.results.get(lib, "-") for lib in LIBRARIES), "-" if r is None else f"{r:.2f}"]


def _machine() -> str:
    return f"{machine()}; torch on {torch.get_num_threads()} thread(s); load average {load()}"


def main(argv: list[str] | None = None) -> int:
    """Run every case, print one table (medians in ms) and the float32 slogdet error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and channel counts (~30 s)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 41, quick 3)")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    args = parser.parse_args(argv)
    with single_thread(), warnings.catch_warnings():
        # the peers call torch.lu / torch.qr, deprecated in torch 2.x: their warnings are not results
        warnings.filterwarnings("ignore", message=r"torch\.(lu|qr) is deprecated")
        # nflows' spline coupling warns that a conditioner without ``hidden_features`` gets unscaled widths:
        # that is the configuration compared here (the reference does not scale them either)
        warnings.filterwarnings("ignore", message="Inputs to the softmax are not scaled down")
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    repeats = args.repeats or (3 if args.quick else 41)
    print(f"machine: {_machine()} (start)", flush=True)
    print("versions: " + ", ".join(f"{lib} {_version(lib)}" for lib in PEERS), flush=True)
    all_cases = [case for case in cases(args.quick) if args.only in case.name]
    for case in all_cases:
        run_case(case, repeats)
    header = ["case (median ms)", *LIBRARIES, "ref/best"]
    print()
    print_table(f"Reference vs peers, batch {BATCH}, {repeats} interleaved rounds, 1 thread",
                header, [row(case) for case in all_cases],
                note=f"ref/best = reference / fastest peer in the same round, median over rounds (goal <= 1.0); "
                     f"{MISSING} = not installed,\n{NOT_AVAILABLE} = no such layer; (ms) = not counted: normflows' "
                     "MAF runs its MADE in the sampling direction (1 pass to sample, d passes for log_prob),\n"
                     "the work of an IAF.")
    maf_rows = [c for c in all_cases if c.name.startswith("MAF")]
    if len(maf_rows) == 2:
        lp, sa = (c.results for c in maf_rows)
        slow = ", ".join(f"{lib} {sa[lib] / lp[lib]:.1f}x" for lib in LIBRARIES
                         if isinstance(lp.get(lib), float) and isinstance(sa.get(lib), float))
        print(f"MAF sample / log_prob: {slow}")
    print(f"float32 slogdet error on an ill-conditioned 512x512 W = PLU: {slogdet_float32_error():.1f} nats "
          "(the LU form is exact)")
    if any(c.name.startswith("RQ spline") for c in all_cases):
        print(f"RQ spline rows: K = {SPLINE_BINS} bins on [-{SPLINE_BOUND:g}, {SPLINE_BOUND:g}], identity tails, "
              "conditioner MLP 64-64 on the kept half in every library; lesson 09's log_prob runs the spline inverse\n"
              "(its layers map base->data), nflows' and zuko's the forward; normflows' spline layers are nflows' code "
              "(not timed again).")
    if any(c.name.startswith("CNF") for c in all_cases) and all(installed(lib) for lib in ("zuko",)):
        print(cnf_note())
    print(f"machine: {_machine()} (end)")
    return 0


def _version(library: str) -> str:
    if not installed(library):
        return MISSING
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(library)
    except PackageNotFoundError:  # pragma: no cover - importable but not pip-installed
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
