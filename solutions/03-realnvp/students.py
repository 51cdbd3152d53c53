"""Sample-class students for lesson 03 (RealNVP affine coupling): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points. The layer class calls the student's own coupling functions
and soft clamp; a mistake there is charged once, in the helper, where the judge can trace the layer's wrong
output to the helper's (an affine use of it); a helper's wrong shape, or a soft clamp whose error passes
through exp, still costs the layer's points too, with a message naming the helper (listed).
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

LAYER_DETACHED = _LAYER.format(conditioner='''\
        # the network is never inverted, so it needs no gradient (wrong: then it never trains)
        log_s, t = self.net(self.mask * z).detach().chunk(2, dim=1)
        if self.clamp is not None:
            log_s = soft_clamp(log_s, self.clamp)
        return log_s, t''')

FORWARD_IN_PLACE = _FORWARD.format(body='''\
    log_s = (1 - mask) * log_s
    x = z.mul_(torch.exp(log_s)).add_((1 - mask) * t)  # saves a copy, but edits the caller's z
    return x, log_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)''')

FORWARD_DEFAULT_DTYPE = _FORWARD.format(body='''\
    keep = mask.expand_as(z)
    x = torch.where(keep == 1, z, z * torch.exp(log_s) + t)
    logdet = torch.zeros(z.shape[0])  # the default dtype (float64 here), not z's
    for i in range(z.shape[1]):
        if mask.reshape(-1)[i] == 0:
            logdet = logdet + log_s.expand_as(z)[:, i]
    return x, logdet''')

# correct code in unusual ways: torch.where selections, einsum sums, expm1 and a stable tanh, int64 masks
UNUSUAL_FORWARD = '''
def coupling_forward(z, mask, log_s, t):
    moved = (mask == 0).expand_as(z)
    scale = torch.where(moved, log_s.expand_as(z), torch.zeros_like(z))
    x = torch.where(moved, z * scale.exp() + t.expand_as(z), z)
    return x, torch.einsum("bi->b", scale)
'''

UNUSUAL_INVERSE = '''
def coupling_inverse(x, mask, log_s, t):
    moved = (mask == 0).expand_as(x)
    scale = torch.where(moved, log_s.expand_as(x), torch.zeros_like(x))
    z = torch.where(moved, (x - t.expand_as(x)) * torch.exp(-scale), x)
    return z, -torch.einsum("bi->b", scale)
'''

UNUSUAL_SOFT_CLAMP = '''
def soft_clamp(log_s, bound):
    """bound * tanh(log_s / bound), written with expm1: tanh(u) = -expm1(-2|u|) / (1 + exp(-2|u|)) · sign(u)."""
    u = log_s / bound
    e = torch.exp(-2 * u.abs())
    return bound * torch.sign(u) * (-torch.expm1(-2 * u.abs())) / (1 + e)
'''

UNUSUAL_MASKS = '''
def alternating_masks(d, n_layers):
    """Masks of shape (n_layers, d): layer k keeps coordinate i (mask 1) when i + k is even."""
    return ((torch.arange(n_layers)[:, None] + torch.arange(d)[None, :]) % 2 == 0).long()  # int64 0/1
'''

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
        "patches": {"coupling_forward": FORWARD_WRONG_HALF},
        "expect_points": {"coupling_forward": 0},  # charged once: the layer is right given its helper
        "expect_message": ("wrong mask half", "comes from your `coupling_forward`"),
    },
    {
        "id": "l03-logdet-over-kept-half",
        "lesson": LESSON,
        "about": "the forward log-det sums log s over every coordinate, the kept half included",
        "patches": {"coupling_forward": FORWARD_LOGDET_ALL},
        "expect_points": {"coupling_forward": 0},  # charged once: the layer is right given its helper
        "expect_message": ("log-det summed over the kept half too", "comes from your `coupling_forward`"),
    },
    {
        "id": "l03-logdet-not-summed",
        "lesson": LESSON,
        "about": "the forward returns the per-coordinate log-scales as the log-det",
        "patches": {"coupling_forward": FORWARD_NOT_SUMMED},
        # a helper that changes the log-det's shape is not traced: the layer is charged too
        "expect_points": {"coupling_forward": 0, "AffineCoupling": 0},
        "expect_message": "not summed",
    },
    {
        "id": "l03-inverse-logdet-sign",
        "lesson": LESSON,
        "about": "the inverse returns the forward's log-det (+Σ log s)",
        "patches": {"coupling_inverse": INVERSE_SIGN},
        "expect_points": {"coupling_inverse": 0},  # charged once: the layer is right given its helper
        "expect_message": ("forward log-det returned by the inverse", "comes from your `coupling_inverse`"),
    },
    {
        "id": "l03-inverse-divides-by-log-s",
        "lesson": LESSON,
        "about": "the inverse divides by log s instead of multiplying by exp(-log s)",
        "patches": {"coupling_inverse": INVERSE_DIVIDES_BY_LOG_S},
        "expect_points": {"coupling_inverse": 0},  # charged once: the layer is right given its helper
        "expect_message": ("divides by log s", "comes from your `coupling_inverse`"),
    },
    {
        "id": "l03-accepts-zero-scale",
        "lesson": LESSON,
        "about": "practice problem 2: the scale version never checks for s = 0",
        "patches": {"coupling_forward_scale": SCALE_ACCEPTS_ZERO},
        "expect_points": {"coupling_forward_scale_rejects_zero": 0},
        "expect_message": "s = 0 accepted",
    },
    {
        "id": "l03-scale-log-without-abs",
        "lesson": LESSON,
        "about": "log(s) instead of log|s|: NaN for the negative scales (3 of the 4 cases)",
        "patches": {"coupling_forward_scale": SCALE_LOG_WITHOUT_ABS},
        "expect_points": {"coupling_forward_scale": 0.25},
        "expect_message": "log without abs",
    },
    {
        "id": "l03-hard-clamp",
        "lesson": LESSON,
        "about": "torch.clamp instead of the soft clamp (the layer uses it too)",
        "patches": {"soft_clamp": SOFT_CLAMP_HARD},
        # the layer's error passes through exp, so the judge cannot excuse it: it loses its points too, with a
        # message naming soft_clamp
        "expect_points": {"soft_clamp": 0, "AffineCoupling": 0},
        "expect_message": ("hard clamp", "calls your `soft_clamp`, which is wrong"),
    },
    {
        "id": "l03-unclamped-scale",
        "lesson": LESSON,
        "about": "the layer exponentiates the raw network output (no soft clamp)",
        "patches": {"AffineCoupling": LAYER_UNCLAMPED},
        "expect_points": {"AffineCoupling": 0},
        "expect_message": "unbounded scale",
    },
    {
        "id": "l03-conditioner-sees-all",
        "lesson": LESSON,
        "about": "the conditioner reads the whole z, so the Jacobian is not triangular",
        "patches": {"AffineCoupling": LAYER_SEES_ALL},
        "expect_points": {"AffineCoupling": 0},
        "expect_message": "conditioner sees the transformed half",
    },
    {
        "id": "l03-in-place-forward",
        "lesson": LESSON,
        "about": "z.mul_(…).add_(…): right values, but the caller's z is edited (and a z that requires grad raises); "
                 "the layer hands its own input to it, so the layer's input is edited too",
        "patches": {"coupling_forward": FORWARD_IN_PLACE},
        "expect_points": {"coupling_forward": 0},  # the layer's in-place edit is its helper's: charged once
        "expect_message": ("changed its input `z` in place", "in-place edit of an input"),
    },
    {
        "id": "l03-detached-network",
        "lesson": LESSON,
        "about": "the conditioner detaches the network's output: every value is right, the network never trains",
        "patches": {"AffineCoupling": LAYER_DETACHED},
        "expect_points": {"AffineCoupling_trains": 0},
        "expect_message": "network output detached",
    },
    {
        "id": "l03-logdet-default-dtype",
        "lesson": LESSON,
        "about": "builds the log-det with torch.zeros(batch): float64 out for float32 in (only the float32 case)",
        "patches": {"coupling_forward": FORWARD_DEFAULT_DTYPE},
        "expect_points": {"coupling_forward": 2 * 5 / 6},
        "expect_message": "the dtype must follow the input",
    },
    {
        "id": "l03-unusual-but-right",
        "lesson": LESSON,
        "about": "correct code in unusual ways (torch.where, einsum, expm1, int64 masks) and quiz answers in the "
                 "variables the cells name, lower-case or as expressions: full marks",
        "patches": {"coupling_forward": UNUSUAL_FORWARD, "coupling_inverse": UNUSUAL_INVERSE,
                    "soft_clamp": UNUSUAL_SOFT_CLAMP, "alternating_masks": UNUSUAL_MASKS,
                    "answer_q3": 'answer_q3 = " b "\n', "answer_nice": 'answer_nice = "a"\n',
                    "answer_nice_peak": "answer_nice_peak = 0.5 / math.pi\n",
                    "answer_nats_per_dim": "answer_nats_per_dim = -1.18\n"},
        "expect_points": {},
    },
    {
        "id": "l03-same-mask-every-layer",
        "lesson": LESSON,
        "about": "every layer gets the same mask: half the coordinates are never transformed",
        "patches": {"alternating_masks": MASKS_SAME},
        "expect_points": {"alternating_masks": 0},
        "expect_message": "same mask in every layer",
    },
    {
        "id": "l03-nice-is-gaussian",
        "lesson": LESSON,
        "about": "believes the seeds: a volume-preserving flow only produces Gaussians",
        "patches": {"answer_nice": 'answer_nice = "B"\n'},
        "expect_points": {"quiz_03_nice": 0},
        "expect_message": "volume-preserving taken to mean Gaussian",
    },
    {
        "id": "l03-nats-per-point",
        "lesson": LESSON,
        "about": "reports the per-point log-likelihood as nats per dimension",
        "patches": {"answer_nats_per_dim": "answer_nats_per_dim = -2.36\n"},
        "expect_points": {"quiz_03_nats_per_dim": 0},
        "expect_message": "per data point, not per dimension",
    },
]

# --- every hint proven: one mistaken answer cell per named mistake (tests/test_hints_proven.py) ----------------

_SCALE_LOGDET_ALL = '''
def coupling_forward_scale(z, mask, s, t):
    """x = m*z + (1-m)*(s*z + t); returns (x, sum of log|s| over the transformed coordinates)."""
    if bool(((mask == 0) & (s == 0)).any()):
        raise ValueError("s must be nonzero on every transformed coordinate")
    x = mask * z + (1 - mask) * (s * z + t)
    log_abs_s = torch.log(torch.abs(s))  # every coordinate, the kept ones too
    return x, log_abs_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)
'''

_SCALE_ZERO_TIMES_LOG_ZERO = '''
def coupling_forward_scale(z, mask, s, t):
    """x = m*z + (1-m)*(s*z + t); returns (x, sum of log|s| over the transformed coordinates)."""
    if bool(((mask == 0) & (s == 0)).any()):
        raise ValueError("s must be nonzero on every transformed coordinate")
    x = mask * z + (1 - mask) * (s * z + t)
    log_abs_s = (1 - mask) * torch.log(torch.abs(s))  # 0 * log|0| = 0 * (-inf) = nan on a kept zero
    return x, log_abs_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)
'''

MISTAKEN = {
    "coupling_forward": {
        "wrong mask half (the kept half transformed)": FORWARD_WRONG_HALF,
        "log-det summed over the kept half too": FORWARD_LOGDET_ALL,
        "log-det not summed over the coordinates": FORWARD_NOT_SUMMED,
        "log s used as the scale": _FORWARD.format(body='''\
    x = mask * z + (1 - mask) * (z * log_s + t)  # s and log s confused
    return x, ((1 - mask) * log_s).expand_as(z).reshape(z.shape[0], -1).sum(dim=1)'''),
        "shift added to the kept half too": _FORWARD.format(body='''\
    log_s = (1 - mask) * log_s
    x = z * torch.exp(log_s) + t  # t is not masked
    return x, log_s.expand_as(z).reshape(z.shape[0], -1).sum(dim=1)'''),
    },
    "coupling_inverse": {
        "forward log-det returned by the inverse (sign / direction)": INVERSE_SIGN,
        "divides by log s instead of multiplying by exp(−log s)": INVERSE_DIVIDES_BY_LOG_S,
        "shift removed after unscaling": _INVERSE.format(body='''\
    log_s = (1 - mask) * log_s
    z = x * torch.exp(-log_s) - (1 - mask) * t  # unscaled first, then unshifted
    return z, -log_s.expand_as(x).reshape(x.shape[0], -1).sum(dim=1)'''),
        "scaled by exp(+log s) again": _INVERSE.format(body='''\
    log_s = (1 - mask) * log_s
    z = (x - (1 - mask) * t) * torch.exp(log_s)  # multiplies by the scale instead of dividing
    return z, -log_s.expand_as(x).reshape(x.shape[0], -1).sum(dim=1)'''),
        "wrong mask half (the kept half transformed)": _INVERSE.format(body='''\
    log_s = mask * log_s  # undoes the KEPT half
    z = (x - mask * t) * torch.exp(-log_s)
    return z, -log_s.expand_as(x).reshape(x.shape[0], -1).sum(dim=1)'''),
    },
    "coupling_forward_scale": {
        "log without abs": SCALE_LOG_WITHOUT_ABS,
        "0 · log 0 = NaN on a kept coordinate": _SCALE_ZERO_TIMES_LOG_ZERO,
        "log-det summed over the kept half too": _SCALE_LOGDET_ALL,
    },
    "coupling_forward_scale_rejects_zero": {
        "s = 0 accepted": SCALE_ACCEPTS_ZERO,
    },
    "soft_clamp": {
        "hard clamp": SOFT_CLAMP_HARD,
        "b·tanh(log s) (missing the division by b)": '''
def soft_clamp(log_s, bound):
    """bound * tanh(log_s / bound)."""
    return bound * torch.tanh(log_s)
''',
        "tanh(log s / b) (missing the factor b)": '''
def soft_clamp(log_s, bound):
    """bound * tanh(log_s / bound)."""
    return torch.tanh(log_s / bound)
''',
    },
    "alternating_masks": {
        "same mask in every layer": MASKS_SAME,
        "masks start with the odd coordinates": '''
def alternating_masks(d, n_layers):
    """Masks of shape (n_layers, d): layer k keeps coordinate i (mask 1) when i + k is even."""
    i = torch.arange(d)
    return torch.stack([((i + k) % 2 == 1).to(torch.get_default_dtype()) for k in range(n_layers)])
''',
        "first half / second half instead of alternating coordinates": '''
def alternating_masks(d, n_layers):
    """Masks of shape (n_layers, d)."""
    first = (torch.arange(d) < d // 2).to(torch.get_default_dtype())  # the first half, then the second
    return torch.stack([first if k % 2 == 0 else 1 - first for k in range(n_layers)])
''',
    },
    "AffineCoupling": {
        "unbounded scale (no soft clamp)": LAYER_UNCLAMPED,
        "conditioner sees the transformed half": LAYER_SEES_ALL,
        "wrong mask half (the kept half transformed)": '''
class AffineCoupling(nn.Module):
    """RealNVP affine coupling layer, base -> data."""

    def __init__(self, mask, hidden=64, clamp=2.0, *, net=None):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.get_default_dtype()))
        d = self.mask.numel()
        self.net = mlp_conditioner(d, hidden, 2 * d) if net is None else net
        self.clamp = clamp

    def conditioner(self, z):
        log_s, t = self.net(self.mask * z).chunk(2, dim=1)
        if self.clamp is not None:
            log_s = soft_clamp(log_s, self.clamp)
        return log_s, t

    def forward(self, z):
        # the layer should move the half the network did not read: 1 - mask (wrong: mask 1 is the KEPT half)
        return coupling_forward(z, 1 - self.mask, *self.conditioner(z))

    def inverse(self, x):
        return coupling_inverse(x, 1 - self.mask, *self.conditioner(x))
''',
        "(log s, t) read in the wrong order": _LAYER.format(conditioner='''\
        t, log_s = self.net(self.mask * z).chunk(2, dim=1)  # shift first
        if self.clamp is not None:
            log_s = soft_clamp(log_s, self.clamp)
        return log_s, t'''),
        "hard clamp instead of the soft clamp": _LAYER.format(conditioner='''\
        log_s, t = self.net(self.mask * z).chunk(2, dim=1)
        if self.clamp is not None:
            log_s = torch.clamp(log_s, -self.clamp, self.clamp)
        return log_s, t'''),
    },
    "AffineCoupling_trains": {
        "network output detached (the conditioner never trains)": LAYER_DETACHED,
    },
    "quiz_03_q3": {
        "any real scale": 'answer_q3 = "A"\n',
        "s ≡ 1 (NICE)": 'answer_q3 = "D"\n',
    },
    "quiz_03_nice": {
        "volume-preserving taken to mean Gaussian (the seeds' claim)": 'answer_nice = "B"\n',
        "NICE called non-volume-preserving": 'answer_nice = "C"\n',
    },
    "quiz_03_nice_peak": {
        "the 1-D peak": "answer_nice_peak = 1 / math.sqrt(2 * math.pi)\n",
        "a log-density": "answer_nice_peak = -math.log(2 * math.pi)\n",
    },
    "quiz_03_nats_per_dim": {
        "per data point, not per dimension": "answer_nats_per_dim = -2.36\n",
        "multiplied by d": "answer_nats_per_dim = -2.36 * 2\n",
        "sign dropped": "answer_nats_per_dim = 2.36 / 2\n",
    },
}
