"""Sample-class students for lesson 02 (triangular Jacobians, MADE, MAF, IAF): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points. ``MISTAKEN`` (at the end) proves every named mistake of
``checks.py`` with an answer cell that makes it (``tests/test_hints_proven.py``).
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

AFFINE_IN_PLACE = '''
def affine_autoregressive(z, shift, log_scale):
    """x = z * exp(log_scale) + shift; returns (x, log|det dx/dz|) = (x, sum of log_scale), shape (batch,)."""
    x = z.mul_(torch.exp(log_scale)).add_(shift)  # no extra copy of z
    return x, log_scale.sum(dim=-1)


def affine_autoregressive_inverse(x, shift, log_scale):
    """z = (x - shift) * exp(-log_scale); returns (z, log|det dz/dx|), shape (batch,)."""
    return (x - shift) * torch.exp(-log_scale), -log_scale.sum(dim=-1)
'''

AFFINE_INVERSE_LOGDET_SIGN = '''
def affine_autoregressive(z, shift, log_scale):
    """x = z * exp(log_scale) + shift; returns (x, log|det dx/dz|) = (x, sum of log_scale), shape (batch,)."""
    return z * torch.exp(log_scale) + shift, log_scale.sum(dim=-1)


def affine_autoregressive_inverse(x, shift, log_scale):
    """z = (x - shift) * exp(-log_scale); returns (z, log|det dz/dx|), shape (batch,)."""
    return (x - shift) * torch.exp(-log_scale), log_scale.sum(dim=-1)
'''

SEQUENTIAL_DEFAULT_DTYPE = '''
def sequential_inverse(conditioner, step, y):
    """Solve u = step(y, *conditioner(u)) in exactly d = y.shape[-1] conditioner passes; returns (u, logdet)."""
    batch, d = y.shape
    u = torch.zeros(batch, d)
    for _ in range(d):
        u, logdet = step(y, *conditioner(u))
    return u, logdet
'''

# correct answers written differently from the key (einsum, argsort, torch.where, a while loop, keyword calls)
UNUSUAL_STYLE = {
    "triangular_logdet": '''
def triangular_logdet(J):
    return torch.einsum("...ii->...i", J).abs().log().sum(-1)
''',
    "affine_autoregressive": '''
def affine_autoregressive(z, shift, log_scale):
    x = torch.addcmul(shift, z, log_scale.exp())
    return x, torch.einsum("bi->b", log_scale)


def affine_autoregressive_inverse(x, shift, log_scale):
    return (x - shift) / log_scale.exp(), -log_scale.sum(1)
''',
    "made_degrees": '''
def made_degrees(d, order=None):
    if order is None:
        order = list(range(d))
    return torch.argsort(torch.tensor(order)) + 1


def made_masks(d, hidden_sizes, order=None):
    m_in = made_degrees(d, order)
    degrees = [m_in] + [torch.tensor([k % (d - 1) + 1 for k in range(h)]) for h in hidden_sizes]
    masks = [torch.where(degrees[l + 1][:, None] >= degrees[l][None, :], 1.0, 0.0).float()
             for l in range(len(hidden_sizes))]
    masks.append(torch.where(m_in[:, None] > degrees[-1][None, :], 1.0, 0.0).float())
    return masks
''',
    "sequential_inverse": '''
def sequential_inverse(conditioner, step, y):
    u, passes = y.new_zeros(y.shape), 0
    while passes < y.shape[1]:
        shift, log_scale = conditioner(u)
        u, logdet = step(y, shift, log_scale)
        passes += 1
    return u, logdet
''',
    "maf_forward": '''
def maf_forward(z, conditioner):
    return sequential_inverse(conditioner=conditioner, step=affine_autoregressive, y=z)


def maf_inverse(x, conditioner):
    mu, alpha = conditioner(x)
    return affine_autoregressive_inverse(x, shift=mu, log_scale=alpha)


def iaf_forward(z, conditioner):
    mu, alpha = conditioner(z)
    return affine_autoregressive(z, shift=mu, log_scale=alpha)


def iaf_inverse(x, conditioner):
    return sequential_inverse(conditioner=conditioner, step=affine_autoregressive_inverse, y=x)
''',
    "answer_q2": "answer_q2 = 'b'\n",
    "answer_maf_sample_passes": "answer_maf_sample_passes = 64.0\n",
    "answer_vae_posterior": "answer_vae_posterior = ' B '\n",
    "answer_leaky_mask": "answer_leaky_mask = 'C'\n",
}

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
        "id": "l02-correct-unusual-style",
        "lesson": LESSON,
        "about": "every answer right but written unlike the key (einsum, argsort, torch.where, a while loop, "
                 "keyword calls); quiz answers under the names the cells state, in lower case or with spaces",
        "patches": UNUSUAL_STYLE,
        "expect_points": {},
    },
    {
        "id": "l02-affine-step-in-place",
        "lesson": LESSON,
        "about": "the affine step edits its input z in place (z.mul_().add_()); MAF sampling and IAF sampling "
                 "pass their own z to it, so they change their caller's z too",
        "patches": {"affine_autoregressive": AFFINE_IN_PLACE},
        # iaf_forward calls the step directly: charged once; maf_forward hands it to sequential_inverse as an
        # argument, which the judge cannot trace, so it is still charged
        "expect_points": {"affine_autoregressive": 0, "maf_forward": 0},
        "expect_message": ("changed its input `z` in place", "in-place edit of an input"),
    },
    {
        "id": "l02-helper-only-inverse-logdet-sign",
        "lesson": LESSON,
        "about": "only the inverse affine step is wrong (log-det +Σα); the MAF density and the IAF density that "
                 "call it are right given it, so only the step's point is lost",
        "patches": {"affine_autoregressive": AFFINE_INVERSE_LOGDET_SIGN},
        "expect_points": {"affine_autoregressive_inverse": 0},
        "expect_message": ("inverse log-det not negated", "what is wrong here comes from your "
                                                          "`affine_autoregressive_inverse`"),
    },
    {
        "id": "l02-sequential-default-dtype",
        "lesson": LESSON,
        "about": "sequential_inverse starts from torch.zeros(batch, d), float64 by default: the float32 case "
                 "(the MAF demo's dtype) fails with the conditioner's dtype message",
        "patches": {"sequential_inverse": SEQUENTIAL_DEFAULT_DTYPE},
        "expect_points": {"sequential_inverse": 3 * 4 / 5},
        "expect_message": "make new tensors in y's dtype",
    },
    {
        "id": "l02-made-mask-off-by-one",
        "lesson": LESSON,
        "about": "output mask uses >= instead of >: each output sees its own input",
        "patches": {"made_degrees": MADE_OFF_BY_ONE},
        "expect_points": {"made_masks": 0},
        "expect_message": "MADE mask off by one",
    },
    {
        "id": "l02-maf-sample-one-pass",
        "lesson": LESSON,
        "about": "MAF sampling in one pass (computes the IAF's forward)",
        "patches": {"maf_forward": _maf_iaf(ONE_PASS_FORWARD, ONE_PASS_INVERSE, ONE_PASS_FORWARD, D_PASS_INVERSE)},
        "expect_points": {"maf_forward": 0},
        "expect_message": "MAF sampled in one pass",
    },
    {
        "id": "l02-maf-density-d-passes",
        "lesson": LESSON,
        "about": "MAF density by the sequential inverse (computes the IAF's inverse)",
        "patches": {"maf_forward": _maf_iaf(D_PASS_FORWARD, D_PASS_INVERSE, ONE_PASS_FORWARD, D_PASS_INVERSE)},
        "expect_points": {"maf_inverse": 0},
        "expect_message": "MAF density in d passes",
    },
    {
        "id": "l02-maf-iaf-swapped",
        "lesson": LESSON,
        "about": "MAF and IAF swapped in both directions",
        "patches": {"maf_forward": _maf_iaf(ONE_PASS_FORWARD, D_PASS_INVERSE, D_PASS_FORWARD, ONE_PASS_INVERSE)},
        "expect_points": {"maf_forward": 0, "maf_inverse": 0, "iaf_forward": 0,
                          "iaf_inverse": 0},
        "expect_message": "MAF vs IAF direction",
    },
    {
        "id": "l02-sequential-inverse-d-minus-1",
        "lesson": LESSON,
        "about": "d - 1 passes in the sequential inverse (which MAF sampling and IAF density reuse)",
        "patches": {"sequential_inverse": SEQUENTIAL_D_MINUS_1},
        "expect_points": {"sequential_inverse": 0, "maf_forward": 0, "iaf_inverse": 0},
        "expect_message": ("d − 1 passes (off by one)", "your sequential_inverse stops one pass early"),
    },
    {
        "id": "l02-triangular-logdet-not-summed",
        "lesson": LESSON,
        "about": "log|J_ii| returned per dimension, not summed",
        "patches": {"triangular_logdet": TRIANGULAR_NOT_SUMMED},
        "expect_points": {"triangular_logdet": 0},
        "expect_message": "not summed",
    },
    {
        "id": "l02-triangular-log-without-abs",
        "lesson": LESSON,
        "about": "log of a negative diagonal entry",
        "patches": {"triangular_logdet": TRIANGULAR_NO_ABS},
        "expect_points": {"triangular_logdet": 0},
        "expect_message": "log without abs",
    },
    {
        "id": "l02-affine-logdet-not-summed",
        "lesson": LESSON,
        "about": "per-dimension log-scales returned as the log-det; the MAF/IAF maps built on the step inherit it",
        "patches": {"affine_autoregressive": AFFINE_NOT_SUMMED},
        "expect_points": {"affine_autoregressive": 0, "affine_autoregressive_inverse": 0,
                          "maf_forward": 0, "maf_inverse": 0, "iaf_forward": 0,
                          "iaf_inverse": 0},
        "expect_message": "not summed",
    },
]

# One student's answer cell per named mistake of checks.py, written as a student would (see
# flowcourse_instructor.grading.proofs): each is run on top of the solution notebook and must be named.
MISTAKEN = {
    "triangular_logdet": {
        "log without abs": TRIANGULAR_NO_ABS,
        "trace instead of log-det": '''
def triangular_logdet(J):
    """log|det J| = sum_i log|J_ii| for a triangular J of shape (..., d, d); returns shape (...)."""
    return torch.diagonal(J, dim1=-2, dim2=-1).sum(dim=-1)
''',
        "product of the diagonal before the log (overflow)": '''
def triangular_logdet(J):
    """log|det J| = sum_i log|J_ii| for a triangular J of shape (..., d, d); returns shape (...)."""
    det = torch.prod(J.diagonal(dim1=-2, dim2=-1), dim=-1)
    return torch.log(torch.abs(det))
''',
    },
    "made_degrees": {
        "degree[k] = order[k] + 1 (order not inverted)": '''
def made_degrees(d, order=None):
    """Input degrees of MADE: dimension order[k] gets degree k + 1; returns an integer tensor of shape (d,)."""
    if order is None:
        order = list(range(d))
    return torch.tensor(order) + 1
''',
        "degrees start at 0": '''
def made_degrees(d, order=None):
    """Input degrees of MADE: dimension order[k] gets degree k + 1; returns an integer tensor of shape (d,)."""
    order = torch.arange(d) if order is None else torch.as_tensor(order)
    degrees = torch.empty(d, dtype=torch.long)
    degrees[order] = torch.arange(d)
    return degrees
''',
    },
    "made_masks": {
        "MADE mask off by one, output sees its own input (≥ instead of > in the output mask)": '''
def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features): hidden masks use >=, the output mask uses >."""
    degrees = made_degrees(d, order)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % (d - 1) + 1
        masks.append((current[:, None] >= previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] >= previous[None, :]).float())
    return masks
''',
        "MADE hidden masks strict (> instead of ≥)": '''
def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features): hidden masks use >=, the output mask uses >."""
    degrees = made_degrees(d, order)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % (d - 1) + 1
        masks.append((current[:, None] > previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] > previous[None, :]).float())
    return masks
''',
        "order ignored": '''
def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features): hidden masks use >=, the output mask uses >."""
    degrees = made_degrees(d)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % (d - 1) + 1
        masks.append((current[:, None] >= previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] > previous[None, :]).float())
    return masks
''',
        "hidden degrees up to d": '''
def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features): hidden masks use >=, the output mask uses >."""
    degrees = made_degrees(d, order)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % d + 1
        masks.append((current[:, None] >= previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] > previous[None, :]).float())
    return masks
''',
        "masks transposed": '''
def made_masks(d, hidden_sizes, order=None):
    """MADE masks, each shaped (out_features, in_features): hidden masks use >=, the output mask uses >."""
    degrees = made_degrees(d, order)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % (d - 1) + 1
        masks.append((previous[:, None] <= current[None, :]).float())  # rows: the units read
        previous = current
    masks.append((previous[:, None] < degrees[None, :]).float())
    return masks
''',
    },
    "affine_autoregressive": {
        "α used as the scale": '''
def affine_autoregressive(z, shift, log_scale):
    """x = z * exp(log_scale) + shift; returns (x, log|det dx/dz|) = (x, sum of log_scale), shape (batch,)."""
    x = z * log_scale + shift
    return x, torch.log(torch.abs(log_scale)).sum(dim=-1)
''',
        "log-det Σ e^α instead of Σ α": '''
def affine_autoregressive(z, shift, log_scale):
    """x = z * exp(log_scale) + shift; returns (x, log|det dx/dz|) = (x, sum of log_scale), shape (batch,)."""
    scale = torch.exp(log_scale)
    return z * scale + shift, scale.sum(dim=-1)
''',
    },
    "affine_autoregressive_inverse": {
        "shift removed after unscaling": '''
def affine_autoregressive_inverse(x, shift, log_scale):
    """z = (x - shift) * exp(-log_scale); returns (z, log|det dz/dx|), shape (batch,)."""
    return x * torch.exp(-log_scale) - shift, -log_scale.sum(dim=-1)
''',
        "inverse log-det not negated (+Σ α)": AFFINE_INVERSE_LOGDET_SIGN,
        "multiplied by e^α instead of dividing": '''
def affine_autoregressive_inverse(x, shift, log_scale):
    """z = (x - shift) * exp(-log_scale); returns (z, log|det dz/dx|), shape (batch,)."""
    return (x - shift) * torch.exp(log_scale), -log_scale.sum(dim=-1)
''',
    },
    "sequential_inverse": {
        "one pass from u = 0": '''
def sequential_inverse(conditioner, step, y):
    """Solve u = step(y, *conditioner(u)) in exactly d = y.shape[-1] conditioner passes; returns (u, logdet)."""
    u = torch.zeros_like(y)
    shift, log_scale = conditioner(u)
    return step(y, shift, log_scale)
''',
        "conditioner fed y instead of u (one pass, the MAF/IAF direction confused)": '''
def sequential_inverse(conditioner, step, y):
    """Solve u = step(y, *conditioner(u)) in exactly d = y.shape[-1] conditioner passes; returns (u, logdet)."""
    shift, log_scale = conditioner(y)
    return step(y, shift, log_scale)
''',
        "d − 1 passes (off by one)": SEQUENTIAL_D_MINUS_1,
        "d + 1 passes": '''
def sequential_inverse(conditioner, step, y):
    """Solve u = step(y, *conditioner(u)) in exactly d = y.shape[-1] conditioner passes; returns (u, logdet)."""
    u = torch.zeros_like(y)
    for _ in range(y.shape[-1]):
        u, _ = step(y, *conditioner(u))
    _, logdet = step(y, *conditioner(u))  # the log-det at the final u
    return u, logdet
''',
    },
    "maf_forward": {
        "your sequential_inverse stops one pass early (d − 1 passes)": SEQUENTIAL_D_MINUS_1,
        "MAF vs IAF direction, MAF sampled in one pass (that is the IAF's forward)": '''
def maf_forward(z, conditioner):
    """MAF sampling x = z e^alpha(x) + mu(x): d passes. Returns (x, log|det dx/dz|)."""
    shift, log_scale = conditioner(z)
    return affine_autoregressive(z, shift, log_scale)
''',
    },
    "maf_inverse": {
        "MAF vs IAF direction, MAF density in d passes (that is the IAF's inverse)": '''
def maf_inverse(x, conditioner):
    """MAF density direction z = (x - mu(x)) e^-alpha(x): one pass. Returns (z, log|det dz/dx|)."""
    return sequential_inverse(conditioner, affine_autoregressive_inverse, x)
''',
        "MAF density right but in d passes": '''
def maf_inverse(x, conditioner):
    """MAF density direction z = (x - mu(x)) e^-alpha(x): one pass. Returns (z, log|det dz/dx|)."""
    z = torch.zeros_like(x)
    for i in range(x.shape[1]):  # one coordinate at a time
        shift, log_scale = conditioner(x)
        z[:, i] = (x[:, i] - shift[:, i]) * torch.exp(-log_scale[:, i])
    return z, -log_scale.sum(dim=-1)
''',
    },
    "iaf_forward": {
        "MAF vs IAF direction, IAF sampled in d passes (that is the MAF's forward)": '''
def iaf_forward(z, conditioner):
    """IAF sampling x = z e^alpha(z) + mu(z): one pass. Returns (x, log|det dx/dz|)."""
    return sequential_inverse(conditioner, affine_autoregressive, z)
''',
        "IAF sample right but in d passes": '''
def iaf_forward(z, conditioner):
    """IAF sampling x = z e^alpha(z) + mu(z): one pass. Returns (x, log|det dx/dz|)."""
    x = torch.zeros_like(z)
    for i in range(z.shape[1]):  # one coordinate at a time
        shift, log_scale = conditioner(z)
        x[:, i] = z[:, i] * torch.exp(log_scale[:, i]) + shift[:, i]
    return x, log_scale.sum(dim=-1)
''',
    },
    "iaf_inverse": {
        "your sequential_inverse stops one pass early (d − 1 passes)": SEQUENTIAL_D_MINUS_1,
        "MAF vs IAF direction, IAF density in one pass (that is the MAF's inverse)": '''
def iaf_inverse(x, conditioner):
    """IAF density direction z = (x - mu(z)) e^-alpha(z): d passes. Returns (z, log|det dz/dx|)."""
    shift, log_scale = conditioner(x)
    return affine_autoregressive_inverse(x, shift, log_scale)
''',
    },
    "quiz_02_q2": {
        "orthogonal Jacobian": '''
answer_q2 = "C"
''',
    },
    "quiz_02_maf_sample_passes": {
        "one pass per sample": '''
answer_maf_sample_passes = 64 * 1000
''',
        "MAF sampling in one pass": '''
answer_maf_sample_passes = 1
''',
    },
}
