"""Training loops: they fit tiny problems to their closed-form optima, are reproducible, fail loudly."""

import math

import pytest
import torch

from flowcourse.base import Flow, FlowDistribution, StandardNormal
from flowcourse.training import NonFiniteLoss, fit_max_likelihood, fit_reverse_kl


class DiagAffine(Flow):
    """x = exp(s) ⊙ z + b, a test double whose optimum under a Gaussian target is known in closed form."""

    def __init__(self, s, b):
        super().__init__()
        self.s = torch.nn.Parameter(torch.as_tensor(s, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.as_tensor(b, dtype=torch.float64))

    def forward(self, z):
        return z * self.s.exp() + self.b, self.s.sum().expand(z.shape[0])

    def inverse(self, x):
        return (x - self.b) * (-self.s).exp(), (-self.s).sum().expand(x.shape[0])


def make_dist(s=(0.3, -0.4), b=(-0.5, 0.7)):
    return FlowDistribution(DiagAffine(list(s), list(b)), StandardNormal(2).double())


MEAN = torch.tensor([1.5, -2.0], dtype=torch.float64)
STD = torch.tensor([0.5, 2.0], dtype=torch.float64)


def gaussian_data(n=2000):
    g = torch.Generator().manual_seed(1)
    return MEAN + STD * torch.randn(n, 2, generator=g, dtype=torch.float64)


def test_max_likelihood_reaches_the_closed_form_optimum():
    data = gaussian_data()
    dist = make_dist()
    losses = fit_max_likelihood(dist, data, steps=400, batch_size=4000, lr=0.05, progress=False)
    assert len(losses) == 400 and all(isinstance(v, float) for v in losses)
    # Full batch: the optimum is the sample mean and (biased) sample std; the loss there is the Gaussian
    # entropy with those parameters, computed here independently of the flow.
    mu, sd = data.mean(0), data.std(0, unbiased=False)
    torch.testing.assert_close(dist.flow.b.detach(), mu, atol=1e-2, rtol=0)
    torch.testing.assert_close(dist.flow.s.detach().exp(), sd, atol=1e-2, rtol=0)
    optimum = float(sum(0.5 * math.log(2 * math.pi * math.e * v**2) for v in sd))
    assert losses[0] > optimum + 1.0
    assert losses[-1] == pytest.approx(optimum, abs=1e-3)


def test_reverse_kl_reaches_minus_log_z():
    def log_target(x):  # unnormalised Gaussian: Z = 2π σ1 σ2
        return -0.5 * ((x - MEAN) / STD).pow(2).sum(1)

    dist = make_dist()
    losses = fit_reverse_kl(dist, log_target, steps=400, batch_size=512, lr=0.05, progress=False)
    log_z = math.log(2 * math.pi * float(STD.prod()))
    # loss = KL(q‖p) − log Z ≥ −log Z, with equality at q = p
    assert losses[0] > -log_z + 0.5
    assert sum(losses[-50:]) / 50 == pytest.approx(-log_z, abs=0.02)
    torch.testing.assert_close(dist.flow.b.detach(), MEAN, atol=0.05, rtol=0)
    torch.testing.assert_close(dist.flow.s.detach().exp(), STD, atol=0.05, rtol=0)


def test_same_seed_same_losses_other_seed_other_losses():
    data = gaussian_data(600)
    runs = [
        fit_max_likelihood(make_dist(), data, steps=30, batch_size=64, seed=s, progress=False)
        for s in (3, 3, 4)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]

    def log_target(x):
        return -0.5 * x.pow(2).sum(1)

    kl = [
        fit_reverse_kl(make_dist(), log_target, steps=20, batch_size=32, seed=s, progress=False)
        for s in (5, 5, 6)
    ]
    assert kl[0] == kl[1]
    assert kl[0] != kl[2]


def test_reproducible_regardless_of_global_rng_state():
    data = gaussian_data(600)
    torch.manual_seed(123)
    a = fit_max_likelihood(make_dist(), data, steps=10, batch_size=50, progress=False)
    torch.rand(17)
    b = fit_max_likelihood(make_dist(), data, steps=10, batch_size=50, progress=False)
    assert a == b


def test_one_thread_during_training_and_restored_afterwards():
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = make_dist()

        def log_prob(self, x):
            seen.append(torch.get_num_threads())
            return self.inner.log_prob(x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit_max_likelihood(Spy(), gaussian_data(100), steps=3, progress=False)
        assert seen == [1, 1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_threads_restored_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(NonFiniteLoss):
            fit_reverse_kl(
                make_dist(), lambda x: torch.full((x.shape[0],), math.nan), steps=2, progress=False
            )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_nan_loss_names_the_step_and_the_classic_causes():
    calls = []

    def log_target(x):
        calls.append(1)
        bad = float("nan") if len(calls) > 4 else 0.0
        return -0.5 * x.pow(2).sum(1) + bad

    with pytest.raises(NonFiniteLoss, match=r"step 4 of 10") as info:
        fit_reverse_kl(make_dist(), log_target, steps=10, batch_size=8, progress=False)
    message = str(info.value)
    assert "nan" in message and "scale" in message and "log-det" in message and "sign" in message
    assert isinstance(info.value, FloatingPointError)


def test_infinite_loss_is_caught_too():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def log_prob(self, x):
            return self.w * torch.full((x.shape[0],), float("inf"))

    with pytest.raises(NonFiniteLoss, match=r"step 0 of"):
        fit_max_likelihood(Broken(), gaussian_data(10), steps=5, progress=False)


def test_transform_is_applied_to_every_batch():
    data = gaussian_data(300)
    shifted = []

    def transform(x):
        shifted.append(x.shape[0])
        return x + 10.0

    dist = make_dist(b=(0.0, 0.0))
    fit_max_likelihood(dist, data, steps=300, batch_size=300, lr=0.5, transform=transform, progress=False)
    assert shifted == [300] * 300
    torch.testing.assert_close(dist.flow.b.detach(), data.mean(0) + 10.0, atol=0.05, rtol=0)


def test_minibatches_are_drawn_from_the_data_without_repeats_within_an_epoch():
    data = torch.arange(12, dtype=torch.float64).reshape(6, 2)
    rows = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = make_dist()

        def log_prob(self, x):
            rows.extend(int(r) for r in x[:, 0] // 2)
            return self.inner.log_prob(x)

    fit_max_likelihood(Recorder(), data, steps=3, batch_size=2, progress=False)
    assert sorted(rows) == list(range(6))


def test_sampler_without_generator_argument_is_accepted():
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = make_dist()

        def sample_and_log_prob(self, n):
            return self.inner.sample_and_log_prob(n)

    losses = fit_reverse_kl(Plain(), lambda x: -0.5 * x.pow(2).sum(1), steps=3, batch_size=4, progress=False)
    assert len(losses) == 3


def test_progress_bar_only_when_asked(capsys):
    data = gaussian_data(50)
    fit_max_likelihood(make_dist(), data, steps=2, progress=False)
    assert capsys.readouterr().err == ""
    fit_max_likelihood(make_dist(), data, steps=2, progress=True)
    assert "2/2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be a positive int, got 0"),
        ({"steps": 2.5}, TypeError, "steps must be an int, got float"),
        ({"steps": 2, "batch_size": -1}, ValueError, "batch_size must be a positive int"),
        ({"steps": 2, "lr": 0.0}, ValueError, "lr must be positive"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_max_likelihood(make_dist(), gaussian_data(10), progress=False, **kwargs)


def test_bad_data_and_models_are_named():
    with pytest.raises(TypeError, match="data must be a floating-point tensor"):
        fit_max_likelihood(make_dist(), torch.ones(10, 2, dtype=torch.long), steps=1, progress=False)
    with pytest.raises(TypeError, match="data must be a torch.Tensor"):
        fit_max_likelihood(make_dist(), [[0.0, 1.0]], steps=1, progress=False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        no_params = FlowDistribution(Flow(), StandardNormal(2))
        fit_max_likelihood(no_params, gaussian_data(4), steps=1, progress=False)
    with pytest.raises(TypeError, match="sample_and_log_prob"):
        fit_reverse_kl(torch.nn.Linear(2, 2), lambda x: x.sum(1), steps=1, progress=False)
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        fit_reverse_kl(make_dist(), lambda x: x, steps=1, batch_size=8, progress=False)
