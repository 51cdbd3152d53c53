"""Sample-class students for lesson 09 (neural spline flows): one per classic mistake, and an unusual-but-right one.

Each student is the full solution with one or more solution cells replaced; every test cell not listed in
``expect_points`` is expected at full points. The spline functions call each other (``rq_spline`` calls
``rq_knots``, ``search_bins``, ``rq_forward``/``rq_inverse``, ``rq_root``; the layers call ``rq_spline``): a
mistake in a helper passes through the spline's non-linear formulas, so the functions that use it lose their
points too, with a message naming the helper (listed in ``expect_points``).
"""

LESSON = "09-neural-splines"

_KNOTS = '''
def rq_knots(widths, heights, derivatives, bound=3.0):
    """Knots (..., K + 1) in x and y from -B to B, and knot derivatives (..., K + 1) with both ends 1."""
{body}
'''

KNOTS_UNRESCALED = _KNOTS.format(body='''\
    def knots(raw, minimum):
        sizes = minimum + torch.softmax(raw, dim=-1)  # the minimum added on top: the sizes sum to 1 + K·min
        return 2 * bound * F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) - bound

    inner = MIN_DERIVATIVE + F.softplus(derivatives)
    return knots(widths, MIN_BIN_WIDTH), knots(heights, MIN_BIN_HEIGHT), F.pad(inner, (1, 1), value=1.0)''')

KNOTS_UNSCALED = _KNOTS.format(body='''\
    def knots(raw, minimum):
        sizes = minimum + (1 - minimum * raw.shape[-1]) * torch.softmax(raw, dim=-1)
        return F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) - bound  # bins of total length 1, not 2B

    inner = MIN_DERIVATIVE + F.softplus(derivatives)
    return knots(widths, MIN_BIN_WIDTH), knots(heights, MIN_BIN_HEIGHT), F.pad(inner, (1, 1), value=1.0)''')

KNOTS_BOUNDARY_SOFTPLUS = _KNOTS.format(body='''\
    def knots(raw, minimum):
        sizes = minimum + (1 - minimum * raw.shape[-1]) * torch.softmax(raw, dim=-1)
        return 2 * bound * F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) - bound

    # pad first, then one softplus for all K + 1 derivatives: the ends become min + log 2, not 1
    all_derivatives = MIN_DERIVATIVE + F.softplus(F.pad(derivatives, (1, 1)))
    return knots(widths, MIN_BIN_WIDTH), knots(heights, MIN_BIN_HEIGHT), all_derivatives''')

KNOTS_BOUNDARY_ZERO = _KNOTS.format(body='''\
    def knots(raw, minimum):
        sizes = minimum + (1 - minimum * raw.shape[-1]) * torch.softmax(raw, dim=-1)
        return 2 * bound * F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) - bound

    inner = MIN_DERIVATIVE + F.softplus(derivatives)
    return knots(widths, MIN_BIN_WIDTH), knots(heights, MIN_BIN_HEIGHT), F.pad(inner, (1, 1))  # value forgotten''')

KNOTS_NO_MINIMUM = _KNOTS.format(body='''\
    def knots(raw):
        return 2 * bound * F.pad(torch.cumsum(torch.softmax(raw, dim=-1), dim=-1), (1, 0)) - bound

    return knots(widths), knots(heights), F.pad(F.softplus(derivatives), (1, 1), value=1.0)''')

KNOTS_NO_MIN_DERIVATIVE = _KNOTS.format(body='''\
    def knots(raw, minimum):
        sizes = minimum + (1 - minimum * raw.shape[-1]) * torch.softmax(raw, dim=-1)
        return 2 * bound * F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) - bound

    return knots(widths, MIN_BIN_WIDTH), knots(heights, MIN_BIN_HEIGHT), F.pad(F.softplus(derivatives), (1, 1), value=1.0)''')

KNOTS_NO_MIN_BIN = _KNOTS.format(body='''\
    def knots(raw):
        return 2 * bound * F.pad(torch.cumsum(torch.softmax(raw, dim=-1), dim=-1), (1, 0)) - bound

    inner = MIN_DERIVATIVE + F.softplus(derivatives)
    return knots(widths), knots(heights), F.pad(inner, (1, 1), value=1.0)''')

SEARCH_STRICT = '''
def search_bins(knots, v):
    """Index k in 0..K-1 with knots[k] <= v < knots[k + 1]."""
    below = (v.unsqueeze(-1) > knots).sum(dim=-1)  # knots strictly below v
    return (below - 1).clamp(0, knots.shape[-1] - 2)
'''

FORWARD_SLOPES_SWAPPED = '''
def rq_forward(x, knots_x, knots_y, derivatives):
    """The rational-quadratic spline at x (...,): returns (y, log dy/dx), both (...,)."""
    k = search_bins(knots_x, x).unsqueeze(-1)
    x_k, x_k1 = knots_x.gather(-1, k).squeeze(-1), knots_x.gather(-1, k + 1).squeeze(-1)
    y_k, y_k1 = knots_y.gather(-1, k).squeeze(-1), knots_y.gather(-1, k + 1).squeeze(-1)
    d_k1, d_k = derivatives.gather(-1, k).squeeze(-1), derivatives.gather(-1, k + 1).squeeze(-1)  # exchanged
    w, h = x_k1 - x_k, y_k1 - y_k
    s = h / w
    xi = (x - x_k) / w
    t = xi * (1 - xi)
    denominator = s + (d_k1 + d_k - 2 * s) * t
    y = y_k + h * (s * xi**2 + d_k * t) / denominator
    numerator = d_k1 * xi**2 + 2 * s * t + d_k * (1 - xi) ** 2
    return y, 2 * torch.log(s) + torch.log(numerator) - 2 * torch.log(denominator)
'''

SEARCH_OFF_BY_ONE = '''
def search_bins(knots, v):
    """Index k in 0..K-1 with knots[k] <= v < knots[k + 1]."""
    return torch.searchsorted(knots.contiguous(), v.unsqueeze(-1).contiguous()).squeeze(-1)
'''

SEARCH_NO_CLAMP = '''
def search_bins(knots, v):
    """Index k in 0..K-1 with knots[k] <= v < knots[k + 1]."""
    return (v.unsqueeze(-1) >= knots).sum(dim=-1) - 1
'''

ROOT_UNSTABLE = '''
def rq_root(a, b, c):
    """The root in [0, 1] of a xi^2 + b xi + c = 0: the quadratic formula."""
    return (-b + torch.sqrt(b**2 - 4 * a * c)) / (2 * a)
'''

ROOT_OTHER = '''
def rq_root(a, b, c):
    """The root in [0, 1] of a xi^2 + b xi + c = 0 (b > 0), without cancellation."""
    return 2 * c / (-b + torch.sqrt(b * b - 4 * a * c))
'''

INVERSE_LOGDET_SIGN = '''
def rq_inverse(y, knots_x, knots_y, derivatives):
    """The inverse spline at y (...,): returns (x, log dx/dy), both (...,)."""
    k = search_bins(knots_y, y).unsqueeze(-1)
    x_k, x_k1 = knots_x.gather(-1, k).squeeze(-1), knots_x.gather(-1, k + 1).squeeze(-1)
    y_k, y_k1 = knots_y.gather(-1, k).squeeze(-1), knots_y.gather(-1, k + 1).squeeze(-1)
    d_k, d_k1 = derivatives.gather(-1, k).squeeze(-1), derivatives.gather(-1, k + 1).squeeze(-1)
    w, h = x_k1 - x_k, y_k1 - y_k
    s = h / w
    q = d_k1 + d_k - 2 * s
    delta = y - y_k
    xi = rq_root(h * (s - d_k) + delta * q, h * d_k - delta * q, -s * delta)
    t = xi * (1 - xi)
    numerator = d_k1 * xi**2 + 2 * s * t + d_k * (1 - xi) ** 2
    logdet = 2 * torch.log(s) + torch.log(numerator) - 2 * torch.log(s + q * t)
    return x_k + xi * w, logdet  # the forward formula's log dy/dx
'''

INVERSE_X_KNOTS = INVERSE_LOGDET_SIGN.replace("search_bins(knots_y, y)", "search_bins(knots_x, y)").replace(
    "return x_k + xi * w, logdet  # the forward formula's log dy/dx", "return x_k + xi * w, -logdet")

_SPLINE = '''
def rq_spline(x, widths, heights, derivatives, bound=3.0, inverse=False):
    """Monotonic rational-quadratic spline on [-B, B], identity outside: returns (y, logabsdet)."""
    knots_x, knots_y, knot_derivatives = rq_knots(widths, heights, derivatives, bound)
{body}
'''

SPLINE_EXTRAPOLATED = _SPLINE.format(body='''\
    if inverse:  # the bins' formula everywhere: no tails
        return rq_inverse(x, knots_x, knots_y, knot_derivatives)
    return rq_forward(x, knots_x, knots_y, knot_derivatives)''')

SPLINE_CLAMPED = _SPLINE.format(body='''\
    clamped = x.clamp(-bound, bound)  # the tails clamped, then forgotten
    if inverse:
        return rq_inverse(clamped, knots_x, knots_y, knot_derivatives)
    return rq_forward(clamped, knots_x, knots_y, knot_derivatives)''')

SPLINE_LOGDET_ONE = _SPLINE.format(body='''\
    inside = (x >= -bound) & (x <= bound)
    clamped = x.clamp(-bound, bound)
    if inverse:
        out, logdet = rq_inverse(clamped, knots_x, knots_y, knot_derivatives)
    else:
        out, logdet = rq_forward(clamped, knots_x, knots_y, knot_derivatives)
    # the identity has derivative 1 ...
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.ones_like(logdet))''')

SPLINE_LOGDET_EXTRAPOLATED = _SPLINE.format(body='''\
    inside = (x >= -bound) & (x <= bound)
    if inverse:
        out, logdet = rq_inverse(x, knots_x, knots_y, knot_derivatives)
    else:
        out, logdet = rq_forward(x, knots_x, knots_y, knot_derivatives)
    return torch.where(inside, out, x), logdet  # the points fixed, the log-det forgotten''')

SPLINE_INVERSE_SIGN = _SPLINE.format(body='''\
    inside = (x >= -bound) & (x <= bound)
    clamped = x.clamp(-bound, bound)
    if inverse:
        out, logdet = rq_inverse(clamped, knots_x, knots_y, knot_derivatives)
        logdet = -logdet  # "the inverse's log-det is minus the forward's"
    else:
        out, logdet = rq_forward(clamped, knots_x, knots_y, knot_derivatives)
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))''')

SPLINE_DEFAULT_BOUND = '''
def rq_spline(x, widths, heights, derivatives, bound=3.0, inverse=False):
    """Monotonic rational-quadratic spline on [-B, B], identity outside: returns (y, logabsdet)."""
    knots_x, knots_y, knot_derivatives = rq_knots(widths, heights, derivatives)  # bound forgotten
    inside = (x >= -bound) & (x <= bound)
    clamped = x.clamp(-bound, bound)
    if inverse:
        out, logdet = rq_inverse(clamped, knots_x, knots_y, knot_derivatives)
    else:
        out, logdet = rq_forward(clamped, knots_x, knots_y, knot_derivatives)
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))
'''

SPLINE_NO_INVERSE = _SPLINE.format(body='''\
    inside = (x >= -bound) & (x <= bound)
    out, logdet = rq_forward(x.clamp(-bound, bound), knots_x, knots_y, knot_derivatives)  # inverse never used
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))''')

_COUPLING = '''
class SplineCoupling(Flow):
    """Coupling layer with a rational-quadratic spline transformer, base -> data."""

    def __init__(self, dim, hidden=64, bins=8, bound=3.0, mask=None):
        super().__init__()
        if mask is None:
            mask = torch.arange(dim) % 2 == 0
        mask = torch.as_tensor(mask, dtype=torch.get_default_dtype())
        self.dim, self.bins, self.bound = dim, bins, bound
        self.register_buffer("mask", mask)
        self.register_buffer("kept", (mask == 1).nonzero().flatten(), persistent=False)
        self.register_buffer("moved", (mask == 0).nonzero().flatten(), persistent=False)
        n_kept, n_moved = len(self.kept), len(self.moved)
        self.net = nn.Sequential(nn.Linear(n_kept, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_moved * (3 * bins - 1)))
        with torch.no_grad():
            self.net[-1].weight.zero_()
            bias = self.net[-1].bias.view(n_moved, 3 * bins - 1)
            bias.zero_()
            bias[:, 2 * bins:] = torch.log(torch.expm1(torch.tensor(1 - MIN_DERIVATIVE)))

{methods}
'''

COUPLING_TRANSPOSED = _COUPLING.format(methods='''\
    def spline_params(self, v):
        params = self.net(v[:, self.kept]).view(v.shape[0], 3 * self.bins - 1, -1)  # parameter first
        return [p.transpose(1, 2) for p in params.split([self.bins, self.bins, self.bins - 1], dim=1)]

    def forward(self, z):
        x_b, logdet = rq_spline(z[:, self.moved], *self.spline_params(z), self.bound)
        return z.index_copy(1, self.moved, x_b), logdet.sum(dim=1)

    def inverse(self, x):
        z_b, logdet = rq_spline(x[:, self.moved], *self.spline_params(x), self.bound, inverse=True)
        return x.index_copy(1, self.moved, z_b), logdet.sum(dim=1)''')

COUPLING_DETACHED = _COUPLING.format(methods='''\
    def spline_params(self, v):
        # the network is never inverted, so it needs no gradient (wrong: then it never trains)
        params = self.net(v[:, self.kept]).detach().reshape(v.shape[0], len(self.moved), 3 * self.bins - 1)
        return params.split([self.bins, self.bins, self.bins - 1], dim=-1)

    def forward(self, z):
        x_b, logdet = rq_spline(z[:, self.moved], *self.spline_params(z), self.bound)
        return z.index_copy(1, self.moved, x_b), logdet.sum(dim=1)

    def inverse(self, x):
        z_b, logdet = rq_spline(x[:, self.moved], *self.spline_params(x), self.bound, inverse=True)
        return x.index_copy(1, self.moved, z_b), logdet.sum(dim=1)''')

COUPLING_DEFAULT_BOUND = _COUPLING.format(methods='''\
    def spline_params(self, v):
        params = self.net(v[:, self.kept]).reshape(v.shape[0], len(self.moved), 3 * self.bins - 1)
        return params.split([self.bins, self.bins, self.bins - 1], dim=-1)

    def forward(self, z):
        x_b, logdet = rq_spline(z[:, self.moved], *self.spline_params(z))  # the layer's bound forgotten
        return z.index_copy(1, self.moved, x_b), logdet.sum(dim=1)

    def inverse(self, x):
        z_b, logdet = rq_spline(x[:, self.moved], *self.spline_params(x), inverse=True)
        return x.index_copy(1, self.moved, z_b), logdet.sum(dim=1)''')

AUTOREGRESSIVE_SHORT = '''
class SplineAutoregressive(Flow):
    """Autoregressive spline layer x_i = RQS(z_i; theta_i(z_<i))."""

    def __init__(self, dim, hidden=64, bins=8, bound=3.0):
        super().__init__()
        self.dim, self.bins, self.bound = dim, bins, bound
        self.made = MADE(dim, [hidden, hidden], n_params=3 * bins - 1)
        with torch.no_grad():
            self.made.net[-1].bias[2 * bins * dim:] = torch.log(torch.expm1(torch.tensor(1 - MIN_DERIVATIVE)))

    def params(self, v):
        return torch.stack(self.made(v), dim=-1).split([self.bins, self.bins, self.bins - 1], dim=-1)

    def forward(self, z):
        x, logdet = rq_spline(z, *self.params(z), self.bound)
        return x, logdet.sum(dim=1)

    def inverse(self, x):
        z = torch.zeros_like(x)
        for _ in range(self.dim - 1):  # "the first coordinate needs no pass": it does
            z, logdet = rq_spline(x, *self.params(z), self.bound, inverse=True)
        return z, logdet.sum(dim=1)
'''

AUTOREGRESSIVE_ONE_PASS = '''
class SplineAutoregressive(Flow):
    """Autoregressive spline layer x_i = RQS(z_i; theta_i(z_<i))."""

    def __init__(self, dim, hidden=64, bins=8, bound=3.0):
        super().__init__()
        self.dim, self.bins, self.bound = dim, bins, bound
        self.made = MADE(dim, [hidden, hidden], n_params=3 * bins - 1)
        with torch.no_grad():
            self.made.net[-1].bias[2 * bins * dim:] = torch.log(torch.expm1(torch.tensor(1 - MIN_DERIVATIVE)))

    def params(self, v):
        return torch.stack(self.made(v), dim=-1).split([self.bins, self.bins, self.bins - 1], dim=-1)

    def forward(self, z):
        x, logdet = rq_spline(z, *self.params(z), self.bound)
        return x, logdet.sum(dim=1)

    def inverse(self, x):
        z, logdet = rq_spline(x, *self.params(x), self.bound, inverse=True)  # one pass, as in a MAF
        return z, logdet.sum(dim=1)
'''

# correct code in unusual ways: searchsorted, a -2c/(b + √·) root, explicit knot ends, answers as expressions
UNUSUAL_KNOTS = _KNOTS.format(body='''\
    out = []
    for raw, minimum in ((widths, MIN_BIN_WIDTH), (heights, MIN_BIN_HEIGHT)):
        sizes = minimum + (1 - minimum * raw.shape[-1]) * raw.softmax(-1)
        knots = F.pad(sizes.cumsum(-1), (1, 0)) * (2 * bound) - bound
        knots = torch.cat([torch.full_like(knots[..., :1], -bound), knots[..., 1:-1],
                           torch.full_like(knots[..., :1], bound)], dim=-1)
        out.append(knots)
    ones = torch.ones_like(derivatives[..., :1])
    return out[0], out[1], torch.cat([ones, MIN_DERIVATIVE + F.softplus(derivatives), ones], dim=-1)''')

UNUSUAL_SEARCH = '''
def search_bins(knots, v):
    """searchsorted with right=True gives the number of knots <= v."""
    k = torch.searchsorted(knots.contiguous(), v.unsqueeze(-1).contiguous(), right=True).squeeze(-1) - 1
    return torch.clamp(k, min=0, max=knots.shape[-1] - 2)
'''

UNUSUAL_ROOT = '''
def rq_root(a, b, c):
    """The stable root, written as -2c / (b + sqrt(b^2 - 4ac))."""
    return -2 * c / (b + torch.sqrt(torch.clamp(b * b - 4 * a * c, min=0.0)))
'''

UNUSUAL_FORWARD = '''
def rq_forward(x, knots_x, knots_y, derivatives):
    """Gregory & Delbourgo's ratio form, bins picked by one-hot sums instead of gather."""
    k = search_bins(knots_x, x)
    this, after = F.one_hot(k, knots_x.shape[-1]).to(x.dtype), F.one_hot(k + 1, knots_x.shape[-1]).to(x.dtype)
    x0, x1, y0, y1 = (knots_x * this).sum(-1), (knots_x * after).sum(-1), (knots_y * this).sum(-1), (knots_y * after).sum(-1)
    d0, d1 = (derivatives * this).sum(-1), (derivatives * after).sum(-1)
    s = (y1 - y0) / (x1 - x0)
    xi = (x - x0) / (x1 - x0)
    t = xi * (1 - xi)
    beta = s * xi**2 + s * (1 - xi) ** 2 + (d0 + d1) * t
    y = (y1 * s * xi**2 + y0 * s * (1 - xi) ** 2 + (y0 * d1 + y1 * d0) * t) / beta
    return y, torch.log(s**2 * (d1 * xi**2 + 2 * s * t + d0 * (1 - xi) ** 2) / beta**2)
'''

UNUSUAL_INVERSE = '''
def rq_inverse(y, knots_x, knots_y, derivatives):
    """The quadratic divided by h (u = (y - y_k) / h), and the log-det as minus the log of one ratio."""
    k = search_bins(knots_y, y).unsqueeze(-1)
    at = lambda t, j: torch.take_along_dim(t, j, dim=-1).squeeze(-1)
    x0, x1, y0, y1 = at(knots_x, k), at(knots_x, k + 1), at(knots_y, k), at(knots_y, k + 1)
    d0, d1 = at(derivatives, k), at(derivatives, k + 1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    q = d0 + d1 - 2 * s
    u = (y - y0) / h
    xi = rq_root((s - d0) + u * q, d0 - u * q, -s * u)
    t = xi * (1 - xi)
    return x0 + w * xi, -torch.log(s**2 * (d1 * xi**2 + 2 * s * t + d0 * (1 - xi) ** 2) / (s + q * t) ** 2)
'''

UNUSUAL_SPLINE = '''
def rq_spline(x, widths, heights, derivatives, bound=3.0, inverse=False):
    """Only the points inside [-B, B] see the spline (boolean indexing on copies, as nflows does)."""
    knots_x, knots_y, knot_derivatives = rq_knots(widths, heights, derivatives, bound=bound)
    inside = x.abs() <= bound
    y, logdet = x.clone(), torch.zeros_like(x)
    spline = rq_inverse if inverse else rq_forward
    y[inside], logdet[inside] = spline(x[inside], knots_x[inside], knots_y[inside], knot_derivatives[inside])
    return y, logdet
'''

UNUSUAL_AUTOREGRESSIVE = '''
class SplineAutoregressive(Flow):
    """Autoregressive spline layer; the inverse solves one coordinate per pass and adds up its log-dets."""

    def __init__(self, dim, hidden=64, bins=8, bound=3.0):
        super().__init__()
        self.dim, self.bins, self.bound = dim, bins, bound
        self.made = MADE(dim, [hidden, hidden], n_params=3 * bins - 1)
        with torch.no_grad():
            self.made.net[-1].bias[2 * bins * dim:] = torch.log(torch.expm1(torch.tensor(1 - MIN_DERIVATIVE)))

    def params(self, v):
        return torch.stack(self.made(v), dim=-1).split([self.bins, self.bins, self.bins - 1], dim=-1)

    def forward(self, z):
        x, logdet = rq_spline(z, *self.params(z), self.bound)
        return x, logdet.sum(dim=-1)

    def inverse(self, x):
        z = torch.zeros_like(x)
        logdet = x.new_zeros(x.shape[0])
        for i in range(self.dim):
            w, h, d = (p[:, i] for p in self.params(z))
            z_i, logdet_i = rq_spline(x[:, i], w, h, d, self.bound, inverse=True)
            z = torch.cat([z[:, :i], z_i[:, None], z[:, i + 1:]], dim=1)
            logdet = logdet + logdet_i
        return z, logdet
'''

STUDENTS = [
    {
        "id": "l09-bins-unrescaled",
        "lesson": LESSON,
        "about": "adds the minimum bin size on top of the softmax: the bins sum to 2B(1 + K·min), the last knot overshoots B",
        "patches": {"rq_knots": KNOTS_UNRESCALED},
        "expect_points": {"rq_knots": 0, "rq_spline": 0, "rq_spline_inverse": 0, "SplineCoupling": 0,
                          "SplineAutoregressive": 0},
        "expect_message": ("bins do not sum to 2B (minimum added without rescaling)", "calls your"),
    },
    {
        "id": "l09-boundary-derivative",
        "lesson": LESSON,
        "about": "pads the raw derivatives with zeros before the softplus: boundary slopes min + log 2, a kink at ±B",
        "patches": {"rq_knots": KNOTS_BOUNDARY_SOFTPLUS},
        # only points in the first or last bin see the wrong slopes: the spline keeps the cases without any
        "expect_points": {"rq_knots": 0, "rq_spline": 2 * 2 / 4, "rq_spline_inverse": 1 / 4,
                          "SplineCoupling": 3 * 1 / 5, "SplineAutoregressive": 0},
        "expect_message": "boundary derivatives ≠ 1",
    },
    {
        "id": "l09-search-off-by-one",
        "lesson": LESSON,
        "about": "searchsorted without the minus one: every point is evaluated in the bin to its right",
        "patches": {"search_bins": SEARCH_OFF_BY_ONE},
        # the bin to the right of the last one does not exist: everything that searches raises an IndexError
        "expect_points": {"search_bins": 0, "rq_forward": 0, "rq_inverse": 0, "rq_spline": 0, "rq_spline_inverse": 0,
                          "SplineCoupling": 0, "SplineCoupling_trains": 0, "SplineAutoregressive": 0},
        "expect_message": "off-by-one bin search",
    },
    {
        "id": "l09-unstable-root",
        "lesson": LESSON,
        "about": "the textbook quadratic formula: nan on straight bins, lost digits on nearly straight ones",
        "patches": {"rq_root": ROOT_UNSTABLE},
        "expect_points": {"rq_root": 0.4},
        "expect_message": "unstable root of the quadratic",
    },
    {
        "id": "l09-inverse-logdet-sign",
        "lesson": LESSON,
        "about": "the inverse spline returns the forward formula's log dy/dx",
        "patches": {"rq_inverse": INVERSE_LOGDET_SIGN},
        # rq_spline(inverse=True) returns rq_inverse's value: charged once there; the layers sum it: charged again
        "expect_points": {"rq_inverse": 0, "SplineCoupling": 0, "SplineAutoregressive": 0},
        "expect_message": "log-det sign in the inverse",
    },
    {
        "id": "l09-tails-extrapolated",
        "lesson": LESSON,
        "about": "no identity tails: the first and last bins' formula is used on the whole line",
        "patches": {"rq_spline": SPLINE_EXTRAPOLATED},
        # the layers sum the spline's log-dets (not traced): only the cases whose points stay inside [-B, B] pass
        "expect_points": {"rq_spline": 0, "rq_spline_inverse": 0, "SplineCoupling": 3 * 1 / 5,
                          "SplineAutoregressive": 2 * 1 / 4},
        "expect_message": "tails not identity (the spline extrapolated)",
    },
    {
        "id": "l09-tails-logdet-one",
        "lesson": LESSON,
        "about": "identity tails with log-det 1 (the derivative) instead of 0 (its log)",
        "patches": {"rq_spline": SPLINE_LOGDET_ONE},
        # the layers sum the spline's log-dets (not traced): only the cases whose points stay inside [-B, B] pass
        "expect_points": {"rq_spline": 0, "rq_spline_inverse": 0, "SplineCoupling": 3 * 1 / 5,
                          "SplineAutoregressive": 2 * 1 / 4},
        "expect_message": "tails' log-det not zero",
    },
    {
        "id": "l09-coupling-transposed",
        "lesson": LESSON,
        "about": "reads the coupling network's output as (3K - 1, n_moved): coordinates get each other's parameters",
        "patches": {"SplineCoupling": COUPLING_TRANSPOSED},
        "expect_points": {"SplineCoupling": 3 * 1 / 5},  # with one moved coordinate (dim 2) the layouts agree
        "expect_message": "network output read as (3K − 1, moved)",
    },
    {
        "id": "l09-coupling-detached",
        "lesson": LESSON,
        "about": "detaches the coupling network's output: every value is right, the network never trains",
        "patches": {"SplineCoupling": COUPLING_DETACHED},
        "expect_points": {"SplineCoupling_trains": 0},
        "expect_message": "network output detached",
    },
    {
        "id": "l09-autoregressive-one-pass",
        "lesson": LESSON,
        "about": "inverts the IAF-style layer in one pass, with the MADE run on x",
        "patches": {"SplineAutoregressive": AUTOREGRESSIVE_ONE_PASS},
        "expect_points": {"SplineAutoregressive": 0},
        "expect_message": "inverse in one pass (MADE run on x)",
    },
    {
        "id": "l09-boundary-counted",
        "lesson": LESSON,
        "about": "counts the two boundary derivatives among the network's outputs: 3K = 24",
        "patches": {"answer_n_params": "answer_n_params = 3 * 8\n"},
        "expect_points": {"quiz_09_n_params": 0},
        "expect_message": "boundary derivatives counted",
    },
    {
        "id": "l09-unusual-but-right",
        "lesson": LESSON,
        "about": "correct code in unusual ways (searchsorted, explicit knot ends, -2c/(b + √·), the ratio form of "
                 "the spline, a quadratic divided by h, boolean indexing for the tails, an inverse one coordinate per "
                 "pass) and quiz answers lower-case or as expressions: full marks",
        "patches": {"rq_knots": UNUSUAL_KNOTS, "search_bins": UNUSUAL_SEARCH, "rq_root": UNUSUAL_ROOT,
                    "rq_forward": UNUSUAL_FORWARD, "rq_inverse": UNUSUAL_INVERSE, "rq_spline": UNUSUAL_SPLINE,
                    "SplineAutoregressive": UNUSUAL_AUTOREGRESSIVE,
                    "answer_n_params": "answer_n_params = 2 * 8 + (8 - 1)\n", "answer_boundary": 'answer_boundary = "b"\n',
                    "answer_linear_bin": 'answer_linear_bin = " c "\n'},
        "expect_points": {},
    },
]

# --- every hint proven: one mistaken answer cell per named mistake (tests/test_hints_proven.py) ----------------

MISTAKEN = {
    "rq_knots": {
        "bins do not sum to 2B (minimum added without rescaling)": KNOTS_UNRESCALED,
        "bins do not sum to 2B (softmax not scaled by 2B)": KNOTS_UNSCALED,
        "boundary derivatives ≠ 1": KNOTS_BOUNDARY_SOFTPLUS,
        "boundary derivatives left at 0 (F.pad's default value)": KNOTS_BOUNDARY_ZERO,
        "no minimum bin size or derivative": KNOTS_NO_MINIMUM,
        "no minimum derivative": KNOTS_NO_MIN_DERIVATIVE,
        "no minimum bin size": KNOTS_NO_MIN_BIN,
    },
    "search_bins": {
        "off-by-one bin search": SEARCH_OFF_BY_ONE,
        "the right end B falls outside the last bin": SEARCH_NO_CLAMP,
        "a value on an interior knot put in the bin on its left": SEARCH_STRICT,
    },
    "rq_forward": {
        "the two knot slopes of the bin exchanged": FORWARD_SLOPES_SWAPPED,
    },
    "rq_root": {
        "unstable root of the quadratic": ROOT_UNSTABLE,
        "the other root of the quadratic": ROOT_OTHER,
    },
    "rq_inverse": {
        "log-det sign in the inverse": INVERSE_LOGDET_SIGN,
        "bin of y searched among the x-knots": INVERSE_X_KNOTS,
    },
    "rq_spline": {
        "tails not identity (the spline extrapolated)": SPLINE_EXTRAPOLATED,
        "tails not identity (x clamped to ±B)": SPLINE_CLAMPED,
        "tails' log-det not zero": SPLINE_LOGDET_ONE,
        "tails' log-det taken from the spline's formula": SPLINE_LOGDET_EXTRAPOLATED,
        "bound not passed to rq_knots": SPLINE_DEFAULT_BOUND,
    },
    "rq_spline_inverse": {
        "tails not identity (the spline extrapolated)": SPLINE_EXTRAPOLATED,
        "tails not identity (x clamped to ±B)": SPLINE_CLAMPED,
        "tails' log-det not zero": SPLINE_LOGDET_ONE,
        "tails' log-det taken from the spline's formula": SPLINE_LOGDET_EXTRAPOLATED,
        "log-det sign in the inverse": SPLINE_INVERSE_SIGN,
        "bound not passed to rq_knots": SPLINE_DEFAULT_BOUND,
        "inverse=True ignored (the forward spline)": SPLINE_NO_INVERSE,
    },
    "SplineCoupling": {
        "network output read as (3K − 1, moved)": COUPLING_TRANSPOSED,
        "bound not passed to rq_spline": COUPLING_DEFAULT_BOUND,
    },
    "SplineCoupling_trains": {
        "network output detached (the conditioner never trains)": COUPLING_DETACHED,
    },
    "SplineAutoregressive": {
        "inverse in one pass (MADE run on x)": AUTOREGRESSIVE_ONE_PASS,
        "one pass too few in the inverse": AUTOREGRESSIVE_SHORT,
    },
    "quiz_09_n_params": {
        "boundary derivatives counted": "answer_n_params = 3 * 8\n",
        "3K + 1 (every knot's derivative counted)": "answer_n_params = 3 * 8 + 1\n",
    },
    "quiz_09_boundary": {
        "softplus cannot output 1": 'answer_boundary = "A"\n',
        "boundary derivatives confused with the bin sizes": 'answer_boundary = "C"\n',
    },
    "quiz_09_linear_bin": {
        "both roots fail": 'answer_linear_bin = "D"\n',
        "a straight bin called not invertible": 'answer_linear_bin = "A"\n',
    },
}
