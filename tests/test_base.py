import math

import pytest
import torch

from flowcourse.base import Flow, FlowDistribution, FlowSequence, StandardNormal, check_batch
from flowcourse.jacobian import jacobian_logdet


class Scale(Flow):
    """x = a ⊙ z, a test double with a known log-det Σ log|a|."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(torch.as_tensor(a, dtype=torch.float64))

    def forward(self, z):
        return z * self.a, torch.log(self.a.abs()).sum().expand(z.shape[0])

    def inverse(self, x):
        return x / self.a, -torch.log(self.a.abs()).sum().expand(x.shape[0])


def test_sequence_logdets_add_and_match_autograd(flowcheck):
    seq = FlowSequence(Scale([2.0, -0.5]), Scale([3.0, 0.25]))
    z = torch.randn(4, 2, dtype=torch.float64)
    _, ld = seq(z)
    expected = math.log(2 * 0.5) + math.log(3 * 0.25)
    torch.testing.assert_close(ld, torch.full((4,), expected, dtype=torch.float64))
    flowcheck(seq, z)


def test_standard_normal_matches_torch():
    z = torch.randn(5, 3, dtype=torch.float64)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(StandardNormal(3).double().log_prob(z), ref)


def test_flow_distribution_density_is_gaussian_with_scaled_variance():
    dist = FlowDistribution(Scale([2.0, 3.0]), StandardNormal(2).double())
    x = torch.randn(6, 2, dtype=torch.float64)
    ref = torch.distributions.Normal(0.0, torch.tensor([2.0, 3.0], dtype=torch.float64)).log_prob(x).sum(1)
    torch.testing.assert_close(dist.log_prob(x), ref)
    xs, lp = dist.sample_and_log_prob(7)
    torch.testing.assert_close(lp, dist.log_prob(xs))


def test_jacobian_logdet_of_linear_map():
    A = torch.randn(3, 3, dtype=torch.float64)
    z = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(jacobian_logdet(lambda v: v @ A.T, z),
                               torch.linalg.slogdet(A).logabsdet.expand(2))


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ([1.0, 2.0], TypeError, "torch.Tensor"),
        (torch.ones(2, 2, dtype=torch.long), TypeError, "floating-point"),
        (torch.ones(2, 3), ValueError, "('batch', 2)"),
    ],
)
def test_check_batch_names_what_was_expected(value, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_batch(value, (2,))
