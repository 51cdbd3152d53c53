r"""Model quality: digits test bits/dim and two-moons test NLL per dimension, next to the issue's figures.

``python -m benchmarks.quality [--quick]`` prints one markdown table. Digits (8x8, 17 levels, the
1200/300/297 split of :func:`flowcourse.data.digits`, uniform dequantisation :math:`y = (x + u)/17`):

* independent per-pixel categoricals (discrete, no dequantisation), :func:`~flowcourse.data.categorical_baseline_bpd`;
* one full-covariance Gaussian, in **pixel** space (on :math:`y`) and in **logit** space
  (:math:`\operatorname{logit}(\alpha + (1-2\alpha)y)`, :math:`\alpha = 0.05` and :math:`0.01`, the density
  carried back to :math:`y` by the change of variables), :func:`~flowcourse.data.gaussian_baseline_bpd`;
* lesson 04's two-level Glow (4 steps per level, 64 hidden channels, logit layer :math:`\alpha = 0.01`),
  built from :mod:`flowcourse_lessons.lesson_04.key` exactly as the lesson builds it from the student's layers
  (same construction order, dtype and seeds), trained with the lesson's 150 Adam steps — so the figure is
  the lesson's;
* an 8-block RealNVP (affine couplings with alternating pixel masks on the 64 flattened pixels, same logit
  layer), trained on the same split and dequantisation.

Test bits/dim average 4 dequantisations of the test digits (:func:`~flowcourse.data.dequantized_bits_per_dim`).
Two moons (:func:`flowcourse.data.two_moons_split`: 4000 training, 2000 held-out points): lesson 03's
RealNVP recipe, test NLL in nats **per dimension** = mean NLL per point / 2. Everything is seeded and runs on
one torch thread. ``--quick`` cuts the training steps (the output says so) for a smoke run; its model
figures are not the lesson's.

Lessons 09–10 at **equal training time** (issue 14): each new model trains, with its lesson's architecture,
optimiser settings and batches, for exactly the CPU time the model it must beat took in the same run — on two
moons lesson 03's RealNVP (1500 steps, the long run), on the digits lesson 04's Glow (600 steps):

* lesson 09's spline flow on two moons: 4 ``SplineCoupling(2, hidden=32, bins=8, bound=4)`` alternating
  which coordinate they keep, Adam :math:`3\cdot10^{-3}`, batch 256 (:func:`moons_spline`);
* lesson 10's flow-matching model: ``VelocityField(2, hidden=64)``, the conditional flow-matching loss, Adam
  :math:`5\cdot10^{-3}`, batch 256; its test NLL is the exact log-likelihood by ``cnf_log_prob`` with the
  lesson's 10 RK4 steps (:func:`moons_flow_matching`);
* lesson 09's spline flow on the digits: 4 ``SplineCoupling(64, hidden=64, bins=8, bound=3)`` with even/odd
  masks and ``Rescale(0.25, 0.5)``, Adam :math:`5\cdot10^{-3}`, batch 128 (:func:`digits_spline`).

The clock is the process's CPU time on one torch thread (:func:`train_for`): on this shared 2-core machine a
wall-clock budget would hand fewer steps to whichever model ran while another job was busy; on an idle machine
the two are the same.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from flowcourse_lessons.lesson_03.key import AffineCoupling, alternating_masks, mlp_conditioner
from flowcourse_lessons.lesson_04.key import Glow, Sigmoid
from flowcourse_lessons.lesson_09.key import SplineCoupling
from flowcourse_lessons.lesson_10.key import VelocityField, cnf_log_prob, flow_matching_loss
from torch import Tensor, nn

from benchmarks.timing import load
from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
from flowcourse.data import (
    categorical_baseline_bpd,
    dequantize,
    dequantized_bits_per_dim,
    digits,
    gaussian_baseline_bpd,
    nats_per_dim,
    two_moons_split,
)
from flowcourse.splines import Rescale
from flowcourse.training import _minibatches, default_dtype, fit_max_likelihood, single_thread

#: The figures the issue quotes (test bits/dim on the digits).
ISSUE = {"categorical": 2.42, "gaussian": 2.46, "realnvp": 2.18}
#: What lesson 04 quotes for its Glow: 150 steps -> about 2.17, 600 steps (LONG_RUN) -> about 2.12.
LESSON_04 = {150: 2.17, 600: 2.12}
#: Lesson 03's two-moons figures as NLL per dimension (it quotes log-likelihoods, -0.94..-1.08 and -0.89).
LESSON_03 = {"short": "0.94–1.08", "long": "0.89"}
#: A volume-preserving flow on N(0, I) never exceeds the base's peak density 1/(2π): NLL/dim >= log(2π)/2.
VOLUME_PRESERVING_BOUND = math.log(2 * math.pi) / 2


@dataclass(frozen=True)
class Budget:
    """Training steps of each model; ``long_runs`` adds the lessons' longer runs (Glow 600, moons 1500)."""

    glow_steps: int
    realnvp_steps: int
    moons_steps: int
    long_runs: bool
    label: str


FULL = Budget(glow_steps=150, realnvp_steps=500, moons_steps=300, long_runs=True, label="full")
QUICK = Budget(glow_steps=20, realnvp_steps=60, moons_steps=60, long_runs=False,
               label="QUICK (fewer training steps: model rows are smoke figures, not the lessons')")


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, our figure, the figure to compare with, and its cost."""

    quantity: str
    model: str
    ours: float
    reference: str
    cpu_s: float


def _timed(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.process_time()
    value = fn()
    return value, time.process_time() - start


def lesson04_glow(steps: int = 150) -> FlowDistribution:
    r"""Lesson 04's digits model, built from the reference layers and trained as the lesson trains it.

    Base→data: ``FlowSequence(Glow((1, 8, 8), levels=2, steps=4, hidden=64), Sigmoid(0.01))``, built under
    float64 default dtype right after ``torch.manual_seed(0)`` (the lesson's setup) and cast to float32;
    ActNorm initialised on 512 training digits dequantised with a generator seeded 1; then ``steps`` Adam
    steps, batch 64, learning rate :math:`6\cdot10^{-3}`, seed 0, fresh dequantisation of every batch.
    """
    data = digits()
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        flow = FlowSequence(Glow((1, 8, 8), levels=2, steps=4, hidden=64), Sigmoid(alpha=0.01))
        model = FlowDistribution(flow, StandardNormal(1, 8, 8)).float()
        with torch.no_grad():
            model.log_prob(dequantize(data.train[:512], generator=torch.Generator().manual_seed(1)))
        fit_max_likelihood(model, data.train, steps=steps, batch_size=64, lr=6e-3, transform=dequantize,
                           progress=False)
    return model


def digits_realnvp(steps: int = 500, hidden: int = 256) -> FlowDistribution:
    r"""An 8-block RealNVP on the flattened digits with the Glow's logit layer, trained by maximum likelihood.

    Eight :class:`~flowcourse_lessons.lesson_03.key.AffineCoupling` layers with :func:`alternating_masks` (even and
    odd pixels in turn, so neighbouring columns condition each other) and masked MLP conditioners
    :math:`\mathrm{NN}(m\odot z)`, soft-clamped scales, then ``Sigmoid(0.01)``; seed 0, Adam with learning rate
    :math:`10^{-3}`, batch 64. It overfits the 1200 training digits quickly: 500 steps is
    about the validation optimum (1500 steps end near 2.5 bits/dim).
    """
    data = digits()
    torch.manual_seed(0)
    couplings = [AffineCoupling(mask, net=mlp_conditioner(64, hidden, 128)) for mask in alternating_masks(64, 8)]
    flow = FlowSequence(*couplings, Sigmoid(alpha=0.01))
    model = FlowDistribution(flow, StandardNormal(64))
    fit_max_likelihood(model, data.train.flatten(1), steps=steps, batch_size=64, lr=1e-3, transform=dequantize,
                       progress=False)
    return model


def moons_realnvp(steps: int = 300, hidden: int = 32, train: Tensor | None = None) -> FlowDistribution:
    r"""Lesson 03's two-moons recipe: 8 affine couplings (alternating masks, clamp 2), batch 256, lr 3e-3.

    Built as the lesson builds its own layers — the masked conditioner ``mlp_conditioner(2, hidden, 4)`` per
    layer, drawn in float64 after seed 0 — so the model, and the figure, are the lesson's.
    """
    train = two_moons_split()[0] if train is None else train
    model = _moons_realnvp_model(hidden)
    fit_max_likelihood(model, train, steps=steps, batch_size=256, lr=3e-3, progress=False)
    return model


def _moons_realnvp_model(hidden: int) -> FlowDistribution:
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        couplings = [AffineCoupling(mask, clamp=2.0, net=mlp_conditioner(2, hidden, 4))
                     for mask in alternating_masks(2, 8)]
        return FlowDistribution(FlowSequence(*couplings), StandardNormal(2)).float()


def moons_realnvp_for(seconds: float, hidden: int = 64, train: Tensor | None = None,
                      anneal: bool = False) -> tuple[FlowDistribution, int]:
    """:func:`moons_realnvp` trained for ``seconds`` of CPU time instead of a number of steps: ``(model, steps)``."""
    train = two_moons_split()[0] if train is None else train
    model = _moons_realnvp_model(hidden)
    steps = train_for(model, lambda x: -model.log_prob(x).mean(), shuffled_batches(train, 256), seconds=seconds,
                      lr=3e-3, anneal=anneal)
    return model, steps


def train_for(module: nn.Module, loss: Callable[[Tensor], Tensor], next_batch: Callable[[], Tensor], *,
              seconds: float, lr: float, seed: int = 0, anneal: bool = False) -> int:
    """Adam on ``loss(next_batch())`` until ``seconds`` of this process's CPU time have passed (one torch
    thread, at least one step); returns the number of steps taken. ``anneal``: the learning rate follows a
    half cosine from ``lr`` to 0 over the budget's *time* (the number of steps is not known in advance).

    Seeded like :func:`~flowcourse.training.fit_max_likelihood` (``torch.manual_seed(seed)`` for the randomness
    inside the loss; the batches come from ``next_batch``). Raises ``FloatingPointError`` on a non-finite loss.
    """
    optimiser = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    steps = 0
    with single_thread():
        torch.manual_seed(seed)
        start = time.process_time()
        while steps == 0 or (elapsed := time.process_time() - start) < seconds:
            if anneal and steps:
                for group in optimiser.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
            value = loss(next_batch())
            if not math.isfinite(float(value.detach())):
                raise FloatingPointError(f"the loss became {float(value)} at step {steps}")
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            steps += 1
    return steps


def shuffled_batches(data: Tensor, batch_size: int, seed: int = 0,
                     transform: Callable[[Tensor], Tensor] | None = None) -> Callable[[], Tensor]:
    """``fit_max_likelihood``'s batches: shuffled epochs without replacement, the generator seeded ``seed``."""
    indices = _minibatches(data.shape[0], batch_size, torch.Generator().manual_seed(seed))

    def next_batch() -> Tensor:
        x = data[next(indices)]
        return x if transform is None else transform(x)

    return next_batch


def moons_spline(seconds: float, train: Tensor | None = None, anneal: bool = False) -> tuple[FlowDistribution, int]:
    r"""Lesson 09's two-moons flow trained for ``seconds`` of CPU time: ``(model, steps)``.

    Four ``SplineCoupling(2, hidden=32, bins=8, bound=4.0)`` keeping coordinate 0, 1, 0, 1, built after
    ``torch.manual_seed(0)`` under float64 default dtype (the notebook's) and cast to float32; maximum
    likelihood, Adam :math:`3\cdot10^{-3}`, batch 256, ``fit_max_likelihood``'s batches (seed 0).
    """
    train = two_moons_split()[0] if train is None else train
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        keep_first = torch.tensor([1.0, 0.0])
        flow = FlowSequence(*[SplineCoupling(2, hidden=32, bins=8, bound=4.0,
                                             mask=keep_first if k % 2 == 0 else 1 - keep_first) for k in range(4)])
        model = FlowDistribution(flow.float(), StandardNormal(2)).float()
    steps = train_for(model, lambda x: -model.log_prob(x).mean(), shuffled_batches(train, 256), seconds=seconds,
                      lr=3e-3, anneal=anneal)
    return model, steps


def moons_flow_matching(seconds: float, train: Tensor | None = None,
                        anneal: bool = False) -> tuple[VelocityField, int]:
    r"""Lesson 10's flow-matching model trained for ``seconds`` of CPU time: ``(field, steps)``.

    ``VelocityField(2, hidden=64)`` built after ``torch.manual_seed(0)`` under float64 default dtype and cast to
    float32, the conditional flow-matching loss on the straight path, Adam :math:`5\cdot10^{-3}` at a constant
    rate, batch 256 drawn with replacement by a generator seeded 0 (``flowcourse.continuous.fit``'s batches).
    """
    train = two_moons_split()[0] if train is None else train
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        field = VelocityField(2, hidden=64).float()
    generator = torch.Generator().manual_seed(0)

    def next_batch() -> Tensor:
        return train[torch.randint(len(train), (min(256, len(train)),), generator=generator)]

    steps = train_for(field, lambda x: flow_matching_loss(field, x), next_batch, seconds=seconds, lr=5e-3,
                      anneal=anneal)
    return field, steps


def digits_spline(seconds: float, anneal: bool = False) -> tuple[FlowDistribution, int]:
    r"""Lesson 09's digits flow trained for ``seconds`` of CPU time: ``(model, steps)``.

    Four ``SplineCoupling(64, hidden=64, bins=8, bound=3.0)`` keeping the even, odd, even, odd pixels, then
    ``Rescale(0.25, 0.5)`` (:math:`[-2, 2]` onto :math:`[0, 1]`), built after ``torch.manual_seed(0)`` under
    float64 default dtype and cast to float32; Adam :math:`5\cdot10^{-3}`, batch 128, each batch dequantised
    with a generator seeded 0 (the notebook's).
    """
    data = digits()
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        even = (torch.arange(64) % 2 == 0).double()
        flow = FlowSequence(*[SplineCoupling(64, hidden=64, bins=8, bound=3.0, mask=even if k % 2 == 0 else 1 - even)
                              for k in range(4)], Rescale(0.25, 0.5))
        model = FlowDistribution(flow.float(), StandardNormal(64)).float()
    noise = torch.Generator().manual_seed(0)
    batches = shuffled_batches(data.train.flatten(1), 128, transform=lambda x: dequantize(x, generator=noise))
    steps = train_for(model, lambda x: -model.log_prob(x).mean(), batches, seconds=seconds, lr=5e-3, anneal=anneal)
    return model, steps


def goal(value: float, target: float, what: str) -> str:
    """The figure-to-beat cell: ``< target (what): PASS`` or ``... : not met``."""
    return f"< {target:.3f} ({what}): {'PASS' if value < target else 'not met'}"


def measure(budget: Budget) -> list[Row]:
    """Every row of the table, in order, under ``budget``."""
    test = digits().test
    bpd = "digits test bits/dim"
    rows = []
    value, cpu = _timed(categorical_baseline_bpd)
    rows.append(Row(bpd, "per-pixel categorical, add-one smoothing", value, f"{ISSUE['categorical']} (issue)", cpu))
    value, cpu = _timed(gaussian_baseline_bpd)
    rows.append(Row(bpd, "full-covariance Gaussian, pixel space", value, "—", cpu))
    for alpha in (0.05, 0.01):
        value, cpu = _timed(lambda a=alpha: gaussian_baseline_bpd(logit_alpha=a))
        reference = f"{ISSUE['gaussian']} (issue)" if alpha == 0.05 else "—"
        rows.append(Row(bpd, f"full-covariance Gaussian, logit space α = {alpha}", value, reference, cpu))

    glow_runs = [budget.glow_steps] + ([600] if budget.long_runs else [])
    for steps in glow_runs:
        model, cpu = _timed(lambda s=steps: lesson04_glow(s))
        reference = f"{LESSON_04[steps]} (lesson 04)" if steps in LESSON_04 else "—"
        glow_bpd, glow_cpu, glow_steps = dequantized_bits_per_dim(model.log_prob, test), cpu, steps
        rows.append(Row(bpd, f"lesson 04 Glow, 2 levels x 4 steps, {steps} steps", glow_bpd, reference, cpu))
    start = time.process_time()
    spline, spline_steps = digits_spline(glow_cpu)
    spline_cpu = time.process_time() - start
    spline_bpd = dequantized_bits_per_dim(lambda y: spline.log_prob(y.flatten(1)), test)
    rows.append(Row(bpd, f"lesson 09 spline flow, 4 couplings K = 8 (hidden 64), {spline_steps} steps",
                    spline_bpd, goal(spline_bpd, glow_bpd, f"Glow {glow_steps} steps, equal time"), spline_cpu))
    model, cpu = _timed(lambda: digits_realnvp(budget.realnvp_steps))
    rows.append(Row(bpd, f"8-block RealNVP (hidden 256, logit α = 0.01), {budget.realnvp_steps} steps",
                    dequantized_bits_per_dim(lambda y: model.log_prob(y.flatten(1)), test),
                    f"{ISSUE['realnvp']} (issue)", cpu))

    train, held_out = two_moons_split()
    nll = "two-moons test NLL, nats per dimension"
    moons_runs = [(budget.moons_steps, 32, LESSON_03["short"])]
    if budget.long_runs:
        moons_runs.append((1500, 64, LESSON_03["long"]))
    for steps, hidden, reference in moons_runs:
        model, cpu = _timed(lambda s=steps, h=hidden: moons_realnvp(s, h, train))
        known = f"{reference} (lesson 03)" if budget.long_runs else "—"
        realnvp_nll, realnvp_cpu = nats_per_dim(model.log_prob, held_out), cpu
        rows.append(Row(nll, f"RealNVP, 8 couplings of {hidden} hidden, {steps} steps", realnvp_nll, known, cpu))
    target = f"RealNVP {steps} steps, equal time"
    start = time.process_time()
    spline, spline_steps = moons_spline(realnvp_cpu, train)
    spline_cpu = time.process_time() - start
    spline_nll = nats_per_dim(spline.log_prob, held_out)
    rows.append(Row(nll, f"lesson 09 spline flow, 4 couplings K = 8 (hidden 32), {spline_steps} steps",
                    spline_nll, goal(spline_nll, realnvp_nll, target), spline_cpu))
    start = time.process_time()
    field, fm_steps = moons_flow_matching(realnvp_cpu, train)
    fm_cpu = time.process_time() - start
    fm_nll = nats_per_dim(lambda x: cnf_log_prob(field, x, steps=10), held_out)
    rows.append(Row(nll, f"lesson 10 flow matching, VelocityField(2, 64), {fm_steps} steps; exact NLL, 10 RK4 steps",
                    fm_nll, goal(fm_nll, realnvp_nll, target), fm_cpu))
    rows.append(Row(nll, "bound for any volume-preserving flow (NICE): log(2π)/2", VOLUME_PRESERVING_BOUND,
                    "NLL/dim ≥ this", 0.0))
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a markdown table (lower is better in both quantities)."""
    lines = ["| quantity | model | ours | issue / lesson figure | train CPU s |", "|---|---|---:|---|---:|"]
    lines += [f"| {r.quantity} | {r.model} | {r.ours:.3f} | {r.reference} | {r.cpu_s:.1f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few training steps: a smoke run (< 30 s)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    with single_thread():
        start, cpu_start = time.perf_counter(), time.process_time()
        print(f"run: {budget.label}; one torch thread; load average at start {load()}")
        rows = measure(budget)
        print(table(rows))
        print(f"\n{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu_start:.0f} s CPU; "
              f"load average at end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
