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
