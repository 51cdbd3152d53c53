"""Sample-class students for lesson 03 (RealNVP affine coupling): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points. The layer class calls the student's own coupling functions
and soft clamp, so a mistake there also costs the class's points (listed).
"""

LESSON = "03-realnvp"

_FORWARD = '''
def coupling_forward(z, mask, log_s, t):
    """x = m*z + (1-m)*(z*exp(log_s) + t); returns (x, log|det dx/dz|) with log-det shape (batch,)."""
{body}
'''

FORWARD_WRONG_HALF = _FORWARD.format(body='''\
    log_s = mask * log_s  # transforms the KEPT half
    x = z * torch.exp(log_s) + mask * t
    return x, log_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)''')

FORWARD_LOGDET_ALL = _FORWARD.format(body='''\
    x = z * torch.exp((1 - mask) * log_s) + (1 - mask) * t
    return x, log_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)  # sums the kept half too''')

FORWARD_NOT_SUMMED = _FORWARD.format(body='''\
    log_s = (1 - mask) * log_s
    return z * torch.exp(log_s) + (1 - mask) * t, log_s.expand_as(z)  # one value per coordinate''')

_INVERSE = '''
def coupling_inverse(x, mask, log_s, t):
    """z = m*x + (1-m)*(x - t)*exp(-log_s); returns (z, log|det dz/dx|) with log-det shape (batch,)."""
{body}
'''

INVERSE_SIGN = _INVERSE.format(body='''\
    log_s = (1 - mask) * log_s
    z = (x - (1 - mask) * t) * torch.exp(-log_s)
    return z, log_s.expand_as(x).reshape(x.shape[0], -1).sum(dim=1)  # the forward's log-det''')

INVERSE_DIVIDES_BY_LOG_S = _INVERSE.format(body='''\
    z = mask * x + (1 - mask) * (x - t) / log_s  # s and log s confused
    return z, -((1 - mask) * log_s).expand_as(x).reshape(x.shape[0], -1).sum(dim=1)''')

_SCALE = '''
def coupling_forward_scale(z, mask, s, t):
    """x = m*z + (1-m)*(s*z + t); returns (x, sum of log|s| over the transformed coordinates)."""
{check}    transformed = mask == 0
    x = mask * z + (1 - mask) * (s * z + t)
    log_abs_s = torch.where(transformed, torch.log({abs_s}), torch.zeros_like(s))
    return x, log_abs_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)
'''
_ZERO_CHECK = '''\
    if bool(((mask == 0) & (s == 0)).any()):
        raise ValueError("s must be nonzero on every transformed coordinate")
'''

SCALE_ACCEPTS_ZERO = _SCALE.format(check="", abs_s="torch.abs(s)")
SCALE_LOG_WITHOUT_ABS = _SCALE.format(check=_ZERO_CHECK, abs_s="s")

SOFT_CLAMP_HARD = '''
def soft_clamp(log_s, bound):
    """bound * tanh(log_s / bound)."""
    return torch.clamp(log_s, -bound, bound)
'''

_LAYER = '''
class AffineCoupling(nn.Module):
    """RealNVP affine coupling layer, base -> data."""

    def __init__(self, mask, hidden=64, clamp=2.0, *, net=None):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.get_default_dtype()))
        d = self.mask.numel()
        self.net = mlp_conditioner(d, hidden, 2 * d) if net is None else net
        self.clamp = clamp

    def conditioner(self, z):
{conditioner}

    def forward(self, z):
        return coupling_forward(z, self.mask, *self.conditioner(z))

    def inverse(self, x):
        return coupling_inverse(x, self.mask, *self.conditioner(x))
'''

LAYER_UNCLAMPED = _LAYER.format(conditioner='''\
        log_s, t = self.net(self.mask * z).chunk(2, dim=1)
        return log_s, t  # no clamp''')

LAYER_SEES_ALL = _LAYER.format(conditioner='''\
        log_s, t = self.net(z).chunk(2, dim=1)  # the network reads z_b too
        if self.clamp is not None:
            log_s = soft_clamp(log_s, self.clamp)
        return log_s, t''')

MASKS_SAME = '''
def alternating_masks(d, n_layers):
    """Masks of shape (n_layers, d)."""
    first = (torch.arange(d) % 2 == 0).to(torch.get_default_dtype())
    return torch.stack([first for _ in range(n_layers)])  # the same half every layer
'''

STUDENTS = [
    {
        "id": "l03-wrong-mask-half",
        "lesson": LESSON,
        "about": "the forward scales and shifts the kept half (mask 1) instead of the other one",
        "patches": {"coupling-forward": FORWARD_WRONG_HALF},
        "expect_points": {"test-coupling-forward": 0, "test-affine-coupling": 0},
        "expect_message": "wrong mask half",
    },
    {
        "id": "l03-logdet-over-kept-half",
        "lesson": LESSON,
        "about": "the forward log-det sums log s over every coordinate, the kept half included",
        "patches": {"coupling-forward": FORWARD_LOGDET_ALL},
        "expect_points": {"test-coupling-forward": 0, "test-affine-coupling": 0},
        "expect_message": "log-det summed over the kept half too",
    },
    {
        "id": "l03-logdet-not-summed",
        "lesson": LESSON,
        "about": "the forward returns the per-coordinate log-scales as the log-det",
        "patches": {"coupling-forward": FORWARD_NOT_SUMMED},
        "expect_points": {"test-coupling-forward": 0, "test-affine-coupling": 0},
        "expect_message": "not summed",
    },
    {
        "id": "l03-inverse-logdet-sign",
        "lesson": LESSON,
        "about": "the inverse returns the forward's log-det (+Σ log s)",
        "patches": {"coupling-inverse": INVERSE_SIGN},
        "expect_points": {"test-coupling-inverse": 0, "test-affine-coupling": 0},
        "expect_message": "forward log-det returned by the inverse",
    },
    {
        "id": "l03-inverse-divides-by-log-s",
        "lesson": LESSON,
        "about": "the inverse divides by log s instead of multiplying by exp(-log s)",
        "patches": {"coupling-inverse": INVERSE_DIVIDES_BY_LOG_S},
        "expect_points": {"test-coupling-inverse": 0, "test-affine-coupling": 0},
        "expect_message": "divides by log s",
    },
    {
        "id": "l03-accepts-zero-scale",
        "lesson": LESSON,
        "about": "practice problem 2: the scale version never checks for s = 0",
        "patches": {"coupling-forward-scale": SCALE_ACCEPTS_ZERO},
        "expect_points": {"test-zero-scale-rejected": 0},
        "expect_message": "s = 0 accepted",
    },
    {
        "id": "l03-scale-log-without-abs",
        "lesson": LESSON,
        "about": "log(s) instead of log|s|: NaN for the negative scales (3 of the 4 cases)",
        "patches": {"coupling-forward-scale": SCALE_LOG_WITHOUT_ABS},
        "expect_points": {"test-coupling-forward-scale": 0.25},
        "expect_message": "log without abs",
    },
    {
        "id": "l03-hard-clamp",
        "lesson": LESSON,
        "about": "torch.clamp instead of the soft clamp (the layer uses it too)",
        "patches": {"soft-clamp": SOFT_CLAMP_HARD},
        "expect_points": {"test-soft-clamp": 0, "test-affine-coupling": 0},
        "expect_message": "hard clamp",
    },
    {
        "id": "l03-unclamped-scale",
        "lesson": LESSON,
        "about": "the layer exponentiates the raw network output (no soft clamp)",
        "patches": {"affine-coupling": LAYER_UNCLAMPED},
        "expect_points": {"test-affine-coupling": 0},
        "expect_message": "unbounded scale",
    },
    {
        "id": "l03-conditioner-sees-all",
        "lesson": LESSON,
        "about": "the conditioner reads the whole z, so the Jacobian is not triangular",
        "patches": {"affine-coupling": LAYER_SEES_ALL},
        "expect_points": {"test-affine-coupling": 0},
        "expect_message": "conditioner sees the transformed half",
    },
    {
        "id": "l03-same-mask-every-layer",
        "lesson": LESSON,
        "about": "every layer gets the same mask: half the coordinates are never transformed",
        "patches": {"alternating-masks": MASKS_SAME},
        "expect_points": {"test-alternating-masks": 0},
        "expect_message": "same mask in every layer",
    },
    {
        "id": "l03-nice-is-gaussian",
        "lesson": LESSON,
        "about": "believes the seeds: a volume-preserving flow only produces Gaussians",
        "patches": {"answer-nice": 'answer_nice = "B"\n'},
        "expect_points": {"test-nice": 0},
        "expect_message": "volume-preserving taken to mean Gaussian",
    },
    {
        "id": "l03-nats-per-point",
        "lesson": LESSON,
        "about": "reports the per-point log-likelihood as nats per dimension",
        "patches": {"answer-nats-per-dim": "answer_nats_per_dim = -2.36\n"},
        "expect_points": {"test-nats-per-dim": 0},
        "expect_message": "per data point, not per dimension",
    },
]
