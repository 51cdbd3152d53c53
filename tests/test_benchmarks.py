"""The benchmark harness (benchmarks/timing.py, benchmarks/peers.py) measures what it claims to — no timing.

Truth used here: the models of each case are the same model (equal log-densities after copying weights,
equal live parameter counts), the timing helper calls what it is given, the table is laid out as shown.
Peers that are not installed are skipped.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from flowcourse_lessons.lesson_04.key import conv1x1_logdet, lu_logdet
from torch import nn

from benchmarks import peers
from benchmarks.timing import format_table, interleaved_samples, paired_ratio

ROOT = Path(__file__).resolve().parents[1]
D64 = torch.float64


def needs(library: str) -> None:
    if not peers.installed(library):
        pytest.skip(f"{library} is not installed (pip install -c benchmarks/constraints.txt -e '.[bench]')")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def linears(module: nn.Module) -> list[nn.Module]:
    """Every linear layer, torch's or a library's own (zuko's ``Linear`` is not an ``nn.Linear``)."""
    return [m for m in module.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)
            and m.weight.dim() == 2 and hasattr(m, "bias")]


# ------------------------------------------------------------------------------------------------- timing

def test_interleaved_samples_calls_each_function_round_robin():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = interleaved_samples(fns, repeats=4, warmup=1, numbers={"b": 2})
    assert set(samples) == {"a", "b", "c"} and all(len(v) == 4 and min(v) >= 0 for v in samples.values())
    warmup, b = ["a", "b", "c"], ["b", "b"]
    rounds = [["a", *b, "c"], [*b, "c", "a"], ["c", "a", *b], ["a", *b, "c"]]  # each starts one later
    assert calls == warmup + [name for r in rounds for name in r]


def test_the_ratio_pairs_rounds_against_the_peer_with_the_lowest_median():
    assert paired_ratio([2.0, 8.0, 6.0], [1.0, 4.0, 2.0]) == 2.0  # the ratio of the medians would be 3
    case = peers.Case("c", lambda lib: None)
    case.samples = {peers.REFERENCE: [2.0, 8.0, 6.0], "zuko": [1.0, 4.0, 2.0], "nflows": [3.0, 3.0, 3.0]}
    case.results = {lib: sorted(v)[1] for lib, v in case.samples.items()} | {"FrEIA": peers.MISSING}
    assert peers.ratio(case) == 2.0
    case.results = {peers.REFERENCE: 6.0, "zuko": peers.NOT_AVAILABLE}
    assert peers.ratio(case) is None


def test_format_table_aligns_and_marks_missing_values():
    text = format_table("T", ["case", "lib", "other"], [["long case", 12.345, None], ["x", 0.5, "missing"]],
                        note="n")
    lines = text.splitlines()
    assert lines[0] == "T" and lines[-1] == "n"
    assert len({len(line) for line in lines[1:-1]}) == 1  # every row as wide as the header
    assert lines[3].startswith("long case") and lines[3].split()[-2:] == ["12.3", "-"]
    assert lines[4].split() == ["x", "0.5", "missing"]


# ------------------------------------------------------------------------------------- the cases are fair

def copy_normflows_into_reference(ref_layers, nf_flows):
    """Copy each normflows conditioner into the reference's.

    normflows' ``channel`` / ``channel_inv`` couplings read the first / the second half, as the reference's
    half masks do; its network outputs ``(shift, scale)`` interleaved, the reference's ``(log s, t)`` stacked.
    """
    with torch.no_grad():
        for ref, block in zip(ref_layers, nf_flows, strict=True):
            nf_net = block.flows[1].param_map
            ref.net[0].load_state_dict(nf_net[0].state_dict())
            ref.net[2].load_state_dict(nf_net[2].state_dict())
            ref.net[4].weight.copy_(torch.cat([nf_net[4].weight[1::2], nf_net[4].weight[0::2]]))
            ref.net[4].bias.copy_(torch.cat([nf_net[4].bias[1::2], nf_net[4].bias[0::2]]))


@pytest.mark.parametrize("d", [2, 6])
def test_realnvp_reference_equals_normflows_after_copying_the_conditioners(d):
    needs("normflows")
    torch.manual_seed(0)
    nf_model, nf_log_prob = peers.realnvp("normflows", d, n_layers=4, hidden=8)
    ref_model, ref_log_prob = peers.realnvp(peers.REFERENCE, d, n_layers=4, hidden=8)
    nf_model.double(), ref_model.double()
    with torch.no_grad():
        for p in nf_model.parameters():
            p.normal_(0.0, 0.4)
    layers = ref_model.flow.layers
    for layer in layers:
        layer.clamp = None  # normflows' log-scale is unbounded
    copy_normflows_into_reference(layers, nf_model.flows)
    x = 2 * torch.randn(64, d, dtype=D64)
    torch.testing.assert_close(ref_log_prob(x), nf_log_prob(x), rtol=1e-10, atol=1e-10)
    assert ref_log_prob(x).std() > 0.1  # not both at the identity


@pytest.mark.parametrize("library", [peers.REFERENCE, *peers.PEERS])
@pytest.mark.parametrize("d", [2, 6])
def test_realnvp_models_have_eight_couplings_with_the_same_conditioner(library, d):
    needs(library)
    module, _ = peers.realnvp(library, d)
    layers = linears(module)
    assert len(layers) == 3 * peers.COUPLINGS
    assert [m.weight.shape[0] for m in layers[:2]] == [peers.HIDDEN, peers.HIDDEN]
    half = d // 2
    per_coupling = half * 64 + 64 + 64 * 64 + 64 + 64 * 2 * half + 2 * half
    assert n_params(module) == peers.COUPLINGS * per_coupling


def test_planar_reference_equals_normflows_with_the_same_parameters():
    needs("normflows")
    torch.manual_seed(1)
    ref, _ = peers.planar(peers.REFERENCE, n_layers=4)
    nf_model, _ = peers.planar("normflows", n_layers=4)
    ref.double(), nf_model.double()
    with torch.no_grad():
        for layer, nf_layer in zip(ref.flow.layers, nf_model.flows, strict=True):
            layer.u.normal_(), layer.w.normal_(), layer.b.normal_()
            nf_layer.u.copy_(layer.u[None]), nf_layer.w.copy_(layer.w[None]), nf_layer.b.copy_(layer.b[None])
    z = torch.randn(32, 2, dtype=D64)
    x, logdet = ref.flow(z)
    x_nf, logdet_nf = z, torch.zeros(32, dtype=D64)
    for flow in nf_model.flows:
        x_nf, ld = flow(x_nf)
        logdet_nf = logdet_nf + ld
    torch.testing.assert_close(x, x_nf)
    torch.testing.assert_close(logdet, logdet_nf)
    assert logdet.abs().max() > 0.1


@pytest.mark.parametrize("library", ["zuko", "nflows", "normflows"])
def test_maf_peers_have_the_reference_made(library):
    needs(library)
    ref, _, _ = peers.maf(peers.REFERENCE)
    module, _, _ = peers.maf(library)
    assert [tuple(m.weight.shape) for m in linears(module)] == [tuple(m.weight.shape) for m in linears(ref)]
    assert n_params(module) == n_params(ref)


def test_reference_logdets_agree_and_float32_slogdet_error_is_real():
    W = torch.randn(6, 6, dtype=D64)
    P, L, U = torch.linalg.lu(W)
    torch.testing.assert_close(lu_logdet(torch.diagonal(U).abs().log(), 3, 2), conv1x1_logdet(W, 3, 2))
    assert peers.slogdet_float32_error(channels=128, spread=6.0) > 1.0  # the table's claim, in nats


# ----------------------------------------------------------------------------------------------- the CLI

def test_run_case_marks_missing_and_absent_layers(monkeypatch):
    really_installed = peers.installed
    monkeypatch.setattr(peers, "installed", lambda lib: lib != "zuko" and really_installed(lib))
    case = peers.Case("LU C=3", lambda lib: peers.with_backward(peers.lu_logdet_fn(lib, 3)), calibrate=True)
    results = peers.run_case(case, repeats=1)
    assert results["zuko"] == peers.MISSING
    assert results["FrEIA"] == (peers.NOT_AVAILABLE if really_installed("FrEIA") else peers.MISSING)
    assert isinstance(results[peers.REFERENCE], float) and isinstance(results["normflows"], float) \
        or not peers.installed("normflows")
    row = peers.row(case)
    assert row[0] == "LU C=3" and len(row) == len(peers.LIBRARIES) + 2


def test_peers_module_runs_quick_and_prints_the_table():
    done = subprocess.run([sys.executable, "-W", "ignore", "-m", "benchmarks.peers", "--quick", "--repeats", "1",
                           "--only", "C=3"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    out = done.stdout
    assert "LU log|det W| C=3" in out and "slogdet log|det W| C=3" in out and "RealNVP" not in out
    assert "ref/best" in out and "load average" in out and "nats" in out


# --------------------------------------------------------------------------- grade on submit (benchmarks/service.py)

def test_service_percentiles_interpolate_and_the_workers_a_burst_needs_round_up():
    from benchmarks import service

    assert service.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert service.percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert service.percentile([5.0], 95) == 5.0 and service.percentile([], 50) != service.percentile([], 50)
    assert service.workers_needed(10_000, 2.0, 900) == 23  # 20,000 worker-seconds in 900 s: 22.2 -> 23
    assert service.workers_needed(10_000, 0.9, 900) == 10 and service.workers_needed(1, 0.1, 3600) == 1


def test_service_waits_for_the_feedback_page_nbgrader_releases(tmp_path):
    from nbgrader.utils import notebook_hash

    from benchmarks import service

    (tmp_path / "submission_secret.txt").write_text("s3cret")
    for name in ("01-a.ipynb", "01-a (1).ipynb", "timestamp.txt"):
        (tmp_path / name).write_text("{}")
    # one page per lesson notebook handed in, named as ExchangeReleaseFeedback names it; a renamed one gets none
    assert service.feedback_names(tmp_path, ["01-a", "01-b"]) == [
        f"{notebook_hash(secret='s3cret', notebook_id='01-a')}.html"]


# ------------------------------------------------------------------ lessons 09-10: splines and continuous flows

def test_spline_coupling_reference_equals_nflows_after_copying_the_conditioner():
    needs("nflows")
    import warnings

    for d in (2, 6):
        torch.manual_seed(d)
        ref, _ = peers.spline_coupling(peers.REFERENCE, d, hidden=8)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Inputs to the softmax are not scaled down")
            nf_model, _ = peers.spline_coupling("nflows", d, hidden=8)
            ref.double(), nf_model.double()
            coupling, layer = nf_model._transform, ref.flow
            with torch.no_grad():
                for p in coupling.transform_net.parameters():
                    p.normal_(0.0, 0.5)
            layer.net.load_state_dict(coupling.transform_net.state_dict())  # same layout, same output order
            z = 2 * torch.randn(64, d, dtype=D64)  # some points in the identity tails of [-3, 3]
            # the reference's layer maps base->data with the spline forward, nflows' transform data->base with it:
            # the same function; and the two inverses agree
            x, logdet = layer(z)
            x_nf, logdet_nf = coupling(z)
            back, logdet_back = layer.inverse(x)
            back_nf, logdet_back_nf = coupling.inverse(x_nf)
        torch.testing.assert_close(x, x_nf, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(logdet, logdet_nf, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(back, back_nf, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(logdet_back, logdet_back_nf, rtol=1e-10, atol=1e-10)
        assert logdet.std() > 0.1 and (x - z).abs().max() > 0.1  # not the identity


@pytest.mark.parametrize("library", ["zuko", "nflows"])
@pytest.mark.parametrize("d", [2, 64])
def test_spline_coupling_peers_have_the_reference_conditioner(library, d):
    needs(library)
    ref, _ = peers.spline_coupling(peers.REFERENCE, d)
    module, _ = peers.spline_coupling(library, d)
    shapes = [tuple(m.weight.shape) for m in linears(ref)]
    assert shapes == [(64, d // 2), (64, 64), ((d - d // 2) * (3 * peers.SPLINE_BINS - 1), 64)]
    assert [tuple(m.weight.shape) for m in linears(module)] == shapes
    assert n_params(module) == n_params(ref)


def _zuko_spline_with_knots(kx, ky, kd, bound):
    """zuko's MonotonicRQSTransform with the reference's knots (zuko parametrises the same spline differently)."""
    from zuko.transforms import MonotonicRQSTransform

    bins = kx.shape[-1] - 1
    shape = kx.shape[:-1]
    spline = MonotonicRQSTransform(torch.zeros(*shape, bins, dtype=kx.dtype), torch.zeros(*shape, bins, dtype=kx.dtype),
                                   torch.zeros(*shape, bins - 1, dtype=kx.dtype), bound=bound)
    spline.horizontal, spline.vertical, spline.derivatives = kx, ky, kd
    return spline


def test_spline_inverse_peers_compute_the_reference_spline():
    from flowcourse_lessons.lesson_09.key import rq_knots, rq_spline

    y, w, h, d = peers.spline_parameters(n=256, d=4)  # float32, about 5% of the points in the tails
    x, logdet = peers.spline_inverse(peers.REFERENCE)(y, w, h, d)
    assert ((y.abs() > peers.SPLINE_BOUND).float().mean() > 0.01) and logdet.std() > 0.1
    forward, forward_logdet = rq_spline(x, w, h, d, bound=peers.SPLINE_BOUND)
    torch.testing.assert_close(forward, y, rtol=0, atol=1e-4)  # a round trip in float32: a sanity check
    if peers.installed("nflows"):  # the same unnormalised parameters
        x_nf, logdet_nf = peers.spline_inverse("nflows")(y, w, h, d)
        torch.testing.assert_close(x_nf, x, rtol=0, atol=1e-5)
        torch.testing.assert_close(logdet_nf, logdet, rtol=0, atol=1e-5)
    if peers.installed("zuko"):  # the same knots
        spline = _zuko_spline_with_knots(*rq_knots(w, h, d, peers.SPLINE_BOUND), peers.SPLINE_BOUND)
        x_z, logdet_z = spline.inv.call_and_ladj(y)
        torch.testing.assert_close(x_z, x, rtol=0, atol=1e-5)
        torch.testing.assert_close(logdet_z, logdet, rtol=1e-5, atol=1e-5)  # float32 log-dets of up to ~10
        y_z, forward_logdet_z = spline.call_and_ladj(x)
        torch.testing.assert_close(forward_logdet_z, forward_logdet, rtol=1e-5, atol=1e-5)
        # zuko's own timed path builds its spline from raw parameters: a valid spline, round trip and log-dets
        x_raw, logdet_raw = peers.spline_inverse("zuko")(y, w, h, d)
        from zuko.transforms import MonotonicRQSTransform

        y_back, forward_raw = MonotonicRQSTransform(w, h, d, bound=peers.SPLINE_BOUND).call_and_ladj(x_raw)
        torch.testing.assert_close(y_back, y, rtol=0, atol=1e-4)
        torch.testing.assert_close(logdet_raw, -forward_raw, rtol=1e-5, atol=1e-5)


def test_zuko_cnf_with_the_lesson_field_computes_the_reference_log_likelihood():
    needs("zuko")
    from flowcourse_lessons.lesson_10.key import VelocityField, cnf_log_prob

    torch.manual_seed(0)
    field = VelocityField(2, hidden=16).double()
    with torch.no_grad():
        for p in field.parameters():
            p.normal_(0.0, 0.7)  # curved, non-trivial dynamics
    x = 1.5 * torch.randn(32, 2, dtype=D64)
    with torch.no_grad():
        exact = cnf_log_prob(field, x, steps=200)
        theirs = peers.zuko_cnf(field, atol=1e-10, rtol=1e-9)().log_prob(x)
        standard = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=D64), torch.eye(2, dtype=D64))
        assert (exact - standard.log_prob(x)).abs().max() > 0.1  # the field moves the density
    torch.testing.assert_close(theirs, exact, rtol=0, atol=1e-5)


def test_matched_tolerance_is_the_loosest_at_least_as_accurate(monkeypatch):
    errors = dict(zip(peers.CNF_TOLERANCES, [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6],
                      strict=True))

    def fake_accuracy(library, tolerance=None):
        return (5e-4, 40) if library == peers.REFERENCE else (errors[tolerance], 10)

    monkeypatch.setattr(peers, "cnf_accuracy", fake_accuracy)
    peers.matched_tolerance.cache_clear()
    try:
        assert peers.matched_tolerance() == peers.CNF_TOLERANCES[5]  # 3e-4 <= 5e-4, the looser 1e-3 is not
    finally:
        peers.matched_tolerance.cache_clear()
