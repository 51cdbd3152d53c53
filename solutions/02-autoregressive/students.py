"""Sample-class students for lesson 02 (triangular Jacobians, MADE, MAF, IAF): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points.
"""

TRIANGULAR_NOT_SUMMED = '''
def triangular_logdet(J):
    """log|det J| = sum_i log|J_ii| for a triangular J of shape (..., d, d); returns shape (...)."""
    return J.diagonal(dim1=-2, dim2=-1).abs().log()
'''

TRIANGULAR_NO_ABS = '''
def triangular_logdet(J):
    """log|det J| = sum_i log|J_ii| for a triangular J of shape (..., d, d); returns shape (...)."""
    return J.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
'''

AFFINE_NOT_SUMMED = '''
def affine_autoregressive(z, shift, log_scale):
    """x = z * exp(log_scale) + shift; returns (x, log|det dx/dz|)."""
    return z * torch.exp(log_scale) + shift, log_scale


def affine_autoregressive_inverse(x, shift, log_scale):
    """z = (x - shift) * exp(-log_scale); returns (z, log|det dz/dx|)."""
    return (x - shift) * torch.exp(-log_scale), -log_scale
'''

MADE_OFF_BY_ONE = '''
def made_degrees(d, order=None):
    """Input degrees of MADE: dimension order[k] gets degree k + 1."""
    order = torch.arange(d) if order is None else torch.as_tensor(order)
    degrees = torch.empty(d, dtype=torch.long)
    degrees[order] = torch.arange(1, d + 1)
    return degrees


def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features)."""
    degrees = made_degrees(d, order)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % (d - 1) + 1
        masks.append((current[:, None] >= previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] >= previous[None, :]).float())  # off by one: should be >
    return masks
'''

SEQUENTIAL_D_MINUS_1 = '''
def sequential_inverse(conditioner, step, y):
    """Solve u = step(y, *conditioner(u)); returns (u, logdet)."""
    u = torch.zeros_like(y)
    logdet = torch.zeros(y.shape[0], dtype=y.dtype)
    for _ in range(y.shape[-1] - 1):  # off by one: the last coordinate never becomes exact
        u, logdet = step(y, *conditioner(u))
    return u, logdet
'''

_MAF_IAF_HEAD = '''
def maf_forward(z, conditioner):
    """MAF sampling."""
    return {maf_forward}


def maf_inverse(x, conditioner):
    """MAF density direction."""
    return {maf_inverse}


def iaf_forward(z, conditioner):
    """IAF sampling."""
    return {iaf_forward}


def iaf_inverse(x, conditioner):
    """IAF density direction."""
    return {iaf_inverse}
'''

ONE_PASS_FORWARD = "affine_autoregressive(z, *conditioner(z))"
D_PASS_FORWARD = "sequential_inverse(conditioner, affine_autoregressive, z)"
ONE_PASS_INVERSE = "affine_autoregressive_inverse(x, *conditioner(x))"
D_PASS_INVERSE = "sequential_inverse(conditioner, affine_autoregressive_inverse, x)"


def _maf_iaf(maf_forward: str, maf_inverse: str, iaf_forward: str, iaf_inverse: str) -> str:
    return _MAF_IAF_HEAD.format(maf_forward=maf_forward, maf_inverse=maf_inverse, iaf_forward=iaf_forward,
                                iaf_inverse=iaf_inverse)


LESSON = "02-autoregressive"

STUDENTS = [
    {
        "id": "l02-made-mask-off-by-one",
        "lesson": LESSON,
        "about": "output mask uses >= instead of >: each output sees its own input",
        "patches": {"made-masks": MADE_OFF_BY_ONE},
        "expect_points": {"test-made-masks": 0},
        "expect_message": "MADE mask off by one",
    },
    {
        "id": "l02-maf-sample-one-pass",
        "lesson": LESSON,
        "about": "MAF sampling in one pass (computes the IAF's forward)",
        "patches": {"maf-iaf": _maf_iaf(ONE_PASS_FORWARD, ONE_PASS_INVERSE, ONE_PASS_FORWARD, D_PASS_INVERSE)},
        "expect_points": {"test-maf-forward": 0},
        "expect_message": "MAF sampled in one pass",
    },
    {
        "id": "l02-maf-density-d-passes",
        "lesson": LESSON,
        "about": "MAF density by the sequential inverse (computes the IAF's inverse)",
        "patches": {"maf-iaf": _maf_iaf(D_PASS_FORWARD, D_PASS_INVERSE, ONE_PASS_FORWARD, D_PASS_INVERSE)},
        "expect_points": {"test-maf-inverse": 0},
        "expect_message": "MAF density in d passes",
    },
    {
        "id": "l02-maf-iaf-swapped",
        "lesson": LESSON,
        "about": "MAF and IAF swapped in both directions",
        "patches": {"maf-iaf": _maf_iaf(ONE_PASS_FORWARD, D_PASS_INVERSE, D_PASS_FORWARD, ONE_PASS_INVERSE)},
        "expect_points": {"test-maf-forward": 0, "test-maf-inverse": 0, "test-iaf-forward": 0,
                          "test-iaf-inverse": 0},
        "expect_message": "MAF vs IAF direction",
    },
    {
        "id": "l02-sequential-inverse-d-minus-1",
        "lesson": LESSON,
        "about": "d - 1 passes in the sequential inverse (which MAF sampling and IAF density reuse)",
        "patches": {"sequential-inverse": SEQUENTIAL_D_MINUS_1},
        "expect_points": {"test-sequential-inverse": 0, "test-maf-forward": 0, "test-iaf-inverse": 0},
        "expect_message": "d − 1 passes (off by one)",
    },
    {
        "id": "l02-triangular-logdet-not-summed",
        "lesson": LESSON,
        "about": "log|J_ii| returned per dimension, not summed",
        "patches": {"triangular-logdet": TRIANGULAR_NOT_SUMMED},
        "expect_points": {"test-triangular-logdet": 0},
        "expect_message": "not summed",
    },
    {
        "id": "l02-triangular-log-without-abs",
        "lesson": LESSON,
        "about": "log of a negative diagonal entry",
        "patches": {"triangular-logdet": TRIANGULAR_NO_ABS},
        "expect_points": {"test-triangular-logdet": 0},
        "expect_message": "log without abs",
    },
    {
        "id": "l02-affine-logdet-not-summed",
        "lesson": LESSON,
        "about": "per-dimension log-scales returned as the log-det; the MAF/IAF maps built on the step inherit it",
        "patches": {"affine-autoregressive": AFFINE_NOT_SUMMED},
        "expect_points": {"test-affine-autoregressive": 0, "test-affine-autoregressive-inverse": 0,
                          "test-maf-forward": 0, "test-maf-inverse": 0, "test-iaf-forward": 0,
                          "test-iaf-inverse": 0},
        "expect_message": "not summed",
    },
]
