"""Sample students for lesson 05 (planar and radial flows): each a patch of the solution notebook.

Every test cell not listed in expect_points is expected at full points. Patches and expectations name cells by
graded names. expect_points are what the judge gives with each patch in place (proofs' machinery, every patch in
its own cell: /work/scratch_05/judge_students.py): a mistake in a helper costs its points once, in the helper;
the worked values a student computes with a wrong planar_logdet are wrong values, whose hints name planar_logdet.
"""

STUDENTS = [{'id': 'l05-tanh-not-derivative',
  'lesson': '05-planar-radial',
  'about': 'tanh(a) in the planar log-det where its derivative 1 - tanh² belongs: charged once, in planar_logdet '
           '(planar_forward and the Planar class are right given it, with a note naming planar_logdet); the two '
           'worked values the student computes with it are wrong, their hints point at planar_logdet',
  'patches': {'planar_logdet': 'def planar_logdet(z, u, w, b):\n'
                               '    """log|det df/dz| of the tanh planar layer f(z) = z + u tanh(w.z + b), for each '
                               'row of z; shape (batch,)."""\n'
                               '    a = z @ w + b                      # one pre-activation per sample\n'
                               '    dh = torch.tanh(a)\n'
                               '    return torch.log(torch.abs(1 + dh * (w @ u)))'},
  'expect_message': ('tanh instead of its derivative', 'fix planar_logdet (exercise 1)',
                     'a mistake costs points once'),
  'expect_points': {'planar_logdet': 0.0, 'worked_05_logdet_raw_u': 0.0, 'worked_05_logdet_u_hat': 0.0}},
 {'id': 'l05-log-without-abs',
  'lesson': '05-planar-radial',
  'about': "log(1 + h'·wᵀu) without abs: NaN where a raw-u layer folds",
  'patches': {'planar_logdet': 'def planar_logdet(z, u, w, b):\n'
                               '    """log|det df/dz| of the tanh planar layer f(z) = z + u tanh(w.z + b), for each '
                               'row of z; shape (batch,)."""\n'
                               '    a = z @ w + b                      # one pre-activation per sample\n'
                               "    dh = 1 - torch.tanh(a) ** 2        # h'(a) for h = tanh\n"
                               '    return torch.log(1 + dh * (w @ u))'},
  'expect_message': 'log without abs',
  # planar_forward and Planar inherit the NaN from planar_logdet: charged once
  'expect_points': {'planar_logdet': 1.6}},
 {'id': 'l05-u-h-broadcast',
  'lesson': '05-planar-radial',
  'about': 'x = z + u * h with h of shape (batch,): wrong when batch = d, an error otherwise',
  'patches': {'planar_forward': 'def planar_forward(z, u, w, b):\n'
                                '    """x = z + u tanh(w.z + b) for each row of z; returns (x, log|det dx/dz|), '
                                'log-det shape (batch,)."""\n'
                                '    h = torch.tanh(z @ w + b)\n'
                                '    x = z + u * h\n'
                                '    return x, planar_logdet(z, u, w, b)'},
  'expect_message': 'u·h broadcast along the wrong axis',
  # Planar's cases where planar_forward raises: a raising helper is not traced yet (told the lead)
  'expect_points': {'planar_forward': 0.5, 'Planar': 1.8}},
 {'id': 'l05-raw-u-vs-u-hat',
  'lesson': '05-planar-radial',
  'about': 'the Planar class ignores reparameterize (always the raw u), and the û worked value is computed with the '
           'raw u (0.580 instead of 0.2202)',
  'patches': {'logdet_u_hat': 'logdet_u_hat = float(planar_logdet(z_ex, u_ex, w_ex, b_ex))',
              'Planar': 'class Planar(nn.Module):\n'
                              '    """Tanh planar layer x = z + u tanh(w.z + b); applies u-hat when reparameterize '
                              'is true."""\n'
                              '\n'
                              '    def __init__(self, d, reparameterize=True):\n'
                              '        super().__init__()\n'
                              '        bound = 1 / math.sqrt(d)\n'
                              '        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                              '        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                              '        self.b = nn.Parameter(torch.zeros(()))\n'
                              '        self.reparameterize = reparameterize\n'
                              '\n'
                              '    def forward(self, z):\n'
                              '        """Return (x, log|det dx/dz|) with log-det shape (batch,)."""\n'
                              '        u = self.u\n'
                              '        return planar_forward(z, u, self.w, self.b)'},
  'expect_message': 'raw u vs û',
  'expect_points': {'worked_05_logdet_u_hat': 0.0, 'Planar': 1.2}},
 {'id': 'l05-norm-w-not-squared',
  'lesson': '05-planar-radial',
  'about': 'û divides by ‖w‖ instead of ‖w‖² (pyro PR #2192)',
  'patches': {'planar_u_hat': 'def planar_u_hat(u, w):\n'
                              '    """The reparameterised u-hat = u + (m(w.u) - w.u) w / ||w||^2 with m(s) = -1 + '
                              'softplus(s)."""\n'
                              '    wu = w @ u\n'
                              '    m = -1 + F.softplus(wu)\n'
                              '    return u + (m - wu) * w / w.norm()'},
  'expect_message': '‖w‖ instead of ‖w‖²',
  # Planar: x = z + h·û uses the wrong û row by row, not as a·û + b: not traced to the helper yet (told the lead)
  'expect_points': {'planar_u_hat': 0.0, 'worked_05_logdet_u_hat': 0.0, 'Planar': 1.2}},
 {'id': 'l05-log1p-exp-overflow',
  'lesson': '05-planar-radial',
  'about': 'm(s) = -1 + log(1 + exp(s)) instead of softplus: inf/NaN for large wᵀu',
  'patches': {'planar_u_hat': 'def planar_u_hat(u, w):\n'
                              '    """The reparameterised u-hat = u + (m(w.u) - w.u) w / ||w||^2 with m(s) = -1 + '
                              'softplus(s)."""\n'
                              '    wu = w @ u\n'
                              '    m = -1 + torch.log(1 + torch.exp(wu))\n'
                              '    return u + (m - wu) * w / (w @ w)'},
  'expect_message': 'log(1 + exp(·)) instead of softplus',
  'expect_points': {'planar_u_hat': 1.5}},
 {'id': 'l05-bias-vector',
  'lesson': '05-planar-radial',
  'about': 'Planar with a bias vector b ∈ R^d (pyro before PR #2192): 3d parameters instead of 2d + 1',
  'patches': {'Planar': 'class Planar(nn.Module):\n'
                              '    """Tanh planar layer x = z + u tanh(w.z + b); applies u-hat when reparameterize '
                              'is true."""\n'
                              '\n'
                              '    def __init__(self, d, reparameterize=True):\n'
                              '        super().__init__()\n'
                              '        bound = 1 / math.sqrt(d)\n'
                              '        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                              '        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                              '        self.b = nn.Parameter(torch.zeros(d))          # one bias per coordinate\n'
                              '        self.reparameterize = reparameterize\n'
                              '\n'
                              '    def forward(self, z):\n'
                              '        """Return (x, log|det dx/dz|) with log-det shape (batch,)."""\n'
                              '        u = planar_u_hat(self.u, self.w) if self.reparameterize else self.u\n'
                              '        h = torch.tanh(z @ self.w[:, None] + self.b)  # (batch, d)\n'
                              '        x = z + h * u\n'
                              '        logdet = torch.log(torch.abs(1 + (1 - h ** 2) @ (self.w * u)))\n'
                              '        return x, logdet'},
  'expect_message': 'bias as a vector',
  'expect_points': {'Planar': 0.0}},
 {'id': 'l05-radial-jacobian-scalar',
  'lesson': '05-planar-radial',
  'about': 'radial log-det d·log(1 + βh), as if the Jacobian were (1 + βh)·I: charged in radial_logdet (forward and '
           'inverse are right given it)',
  'patches': {'radial_logdet': 'def radial_logdet(z, z0, alpha, beta):\n'
                               '    """log|det df/dz| of f(z) = z + beta/(alpha + r) (z - z0), r = ||z - z0||, per '
                               'row of z; shape (batch,)."""\n'
                               '    d = z.shape[1]\n'
                               '    h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))\n'
                               '    return d * torch.log1p(beta * h)'},
  'expect_message': 'Jacobian taken as (1 + βh)·I',
  'expect_points': {'radial_logdet': 0.0}},  # radial_inverse is right given its helper: charged once
 {'id': 'l05-radial-negative-root',
  'lesson': '05-planar-radial',
  'about': 'radial inverse takes the negative root of r² + (α + β - ρ)r - αρ = 0',
  'patches': {'radial_inverse': 'def radial_inverse(x, z0, alpha, beta):\n'
                                '    """z = f^{-1}(x) of the radial layer and log|det dz/dx|, log-det shape '
                                '(batch,)."""\n'
                                '    rho = torch.linalg.vector_norm(x - z0, dim=1)\n'
                                '    c = alpha + beta - rho\n'
                                '    r = 0.5 * (-c - torch.sqrt(c ** 2 + 4 * alpha * rho))\n'
                                '    z = z0 + (x - z0) / (1 + beta / (alpha + r))[:, None]\n'
                                '    return z, -radial_logdet(z, z0, alpha, beta)'},
  'expect_message': 'the negative root of the quadratic',
  'expect_points': {'radial_inverse': 0.0}},
 # issue 12: correct code in an unusual style, a detached û, an in-place edit, a helper-only error
 {'id': 'l05-unusual-style',
  'lesson': '05-planar-radial',
  'about': 'every answer right, written unusually (einsum, sech² as cosh⁻², outer products, a cancellation-free root '
           'with torch.where, .item()), the quiz variables named as the text states them: full marks',
  'patches': {'planar_logdet': 'def planar_logdet(z, u, w, b):\n'
                               '    a = torch.einsum("nd,d->n", z, w) + b\n'
                               "    sech2 = torch.cosh(a).pow(-2)          # h'(a) = sech²(a) = 1 / cosh²(a)\n"
                               '    return (1 + sech2 * torch.dot(w, u)).abs().log()',
              'planar_forward': 'def planar_forward(z, u, w, b):\n'
                                '    h = torch.tanh(torch.einsum("nd,d->n", z, w) + b)\n'
                                '    return z + torch.outer(h, u), planar_logdet(z, u, w, b)',
              'logdet_raw_u': '# Exercise 3: set logdet_raw_u to a Python float\n'
                              'logdet_raw_u = planar_logdet(z_ex, u_ex, w_ex, b_ex).item()',
              'planar_u_hat': 'def planar_u_hat(u, w):\n'
                              '    wu = torch.dot(w, u)\n'
                              '    return u + (F.softplus(wu) - 1 - wu) / w.pow(2).sum() * w',
              'logdet_u_hat': '# Exercise 5: set logdet_u_hat to a Python float\n'
                              'logdet_u_hat = planar_logdet(z_ex, planar_u_hat(u_ex, w_ex), w_ex, b_ex).item()',
              'Planar': 'class Planar(nn.Module):\n'
                        '    """Tanh planar layer x = z + u tanh(w.z + b); applies u-hat when reparameterize is '
                        'true."""\n'
                        '\n'
                        '    def __init__(self, d, reparameterize=True):\n'
                        '        super().__init__()\n'
                        '        self.reparameterize = reparameterize\n'
                        '        lim = d ** -0.5\n'
                        '        self.u = nn.Parameter(torch.rand(d) * 2 * lim - lim)\n'
                        '        self.w = nn.Parameter(torch.rand(d) * 2 * lim - lim)\n'
                        '        self.b = nn.Parameter(torch.tensor(0.0))\n'
                        '\n'
                        '    def forward(self, z):\n'
                        '        """Return (x, log|det dx/dz|) with log-det shape (batch,)."""\n'
                        '        u = planar_u_hat(self.u, self.w) if self.reparameterize else self.u\n'
                        '        return planar_forward(z, u, self.w, self.b)',
              'radial_logdet': 'def radial_logdet(z, z0, alpha, beta):\n'
                               '    r = (z - z0).pow(2).sum(-1).sqrt()\n'
                               '    bh = beta / (alpha + r)\n'
                               '    return (z.shape[-1] - 1) * torch.log(1 + bh) + torch.log(1 + bh * alpha / (alpha '
                               '+ r))',
              'radial_forward': 'def radial_forward(z, z0, alpha, beta):\n'
                                '    r = (z - z0).pow(2).sum(-1).sqrt()\n'
                                '    return z + (beta / (alpha + r)).unsqueeze(1) * (z - z0), radial_logdet(z, z0, '
                                'alpha, beta)',
              'radial_inverse': 'def radial_inverse(x, z0, alpha, beta):\n'
                                '    rho = (x - z0).pow(2).sum(-1).sqrt()\n'
                                '    c = alpha + beta - rho\n'
                                '    disc = torch.sqrt(c * c + 4 * alpha * rho)\n'
                                '    r = torch.where(c > 0, 2 * alpha * rho / (disc + c), (disc - c) / 2)   # no '
                                'cancellation either way\n'
                                '    z = z0 + (x - z0) * ((alpha + r) / (alpha + beta + r)).unsqueeze(1)\n'
                                '    return z, -radial_logdet(z, z0, alpha, beta)',
              'answer_fold': '# Q1: set answer_fold to one capital letter, "A"–"D" (a string)\nanswer_fold = "B"',
              'answer_cost': '# Q2: set answer_cost to one capital letter, "A"–"D" (a string)\nanswer_cost = "C"',
              'answer_reverse_kl': '# Q3: set answer_reverse_kl to one capital letter, "A"–"D" (a string)\n'
                                   'answer_reverse_kl = "A"',
              'answer_radial_beta': '# Q4: set answer_radial_beta to one capital letter, "A"–"D" (a string)\n'
                                    'answer_radial_beta = "B"',
              'answer_mode_seeking': '# Q5: set answer_mode_seeking to one capital letter, "A"–"D" (a string)\n'
                                     'answer_mode_seeking = "A"'},
  'expect_points': {}},
 {'id': 'l05-u-hat-detached',
  'lesson': '05-planar-radial',
  'about': 'the Planar class detaches û: right values, but no gradient reaches u, so u never trains',
  'patches': {'Planar': 'class Planar(nn.Module):\n'
                        '    """Tanh planar layer x = z + u tanh(w.z + b); applies u-hat when reparameterize is '
                        'true."""\n'
                        '\n'
                        '    def __init__(self, d, reparameterize=True):\n'
                        '        super().__init__()\n'
                        '        bound = 1 / math.sqrt(d)\n'
                        '        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                        '        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))\n'
                        '        self.b = nn.Parameter(torch.zeros(()))\n'
                        '        self.reparameterize = reparameterize\n'
                        '\n'
                        '    def forward(self, z):\n'
                        '        """Return (x, log|det dx/dz|) with log-det shape (batch,)."""\n'
                        '        u = planar_u_hat(self.u, self.w).detach() if self.reparameterize else self.u\n'
                        '        return planar_forward(z, u, self.w, self.b)'},
  'expect_message': ('û detached from u', 'a gradient reaches u: got False, expected True'),
  'expect_points': {'Planar_trains': 0.0}},
 {'id': 'l05-in-place-forward',
  'lesson': '05-planar-radial',
  'about': "planar_forward moves the points in place (z += …): right values, but the caller's z is overwritten; "
           'charged in planar_forward (Planar gets a copy of z), and the layer cannot train (backpropagating through '
           'the edited z raises)',
  'patches': {'planar_forward': 'def planar_forward(z, u, w, b):\n'
                                '    """x = z + u tanh(w.z + b) for each row of z; returns (x, log|det dx/dz|), '
                                'log-det shape (batch,)."""\n'
                                '    logdet = planar_logdet(z, u, w, b)\n'
                                '    z += torch.tanh(z @ w + b)[:, None] * u     # move every row along u\n'
                                '    return z, logdet'},
  'expect_message': ('changed its input `z` in place', 'in-place edit of an input'),
  'expect_points': {'planar_forward': 0.0, 'Planar_trains': 0.0}},
 {'id': 'l05-tanh-derivative-no-square',
  'lesson': '05-planar-radial',
  'about': "h' = 1 - tanh(a) (square forgotten) in planar_logdet only: charged once, in planar_logdet (the layer and "
           'planar_forward are right given it); the worked values the student computes with it are wrong and their '
           'hints send them back to planar_logdet',
  'patches': {'planar_logdet': 'def planar_logdet(z, u, w, b):\n'
                               '    """log|det df/dz| of the tanh planar layer f(z) = z + u tanh(w.z + b), for each '
                               'row of z; shape (batch,)."""\n'
                               '    a = z @ w + b\n'
                               "    dh = 1 - torch.tanh(a)             # tanh'(a)\n"
                               '    return torch.log(torch.abs(1 + dh * (w @ u)))'},
  'expect_message': ('derivative of tanh without the square',
                     'fix planar_logdet (exercise 1)',
                     'a mistake costs points once'),
  'expect_points': {'planar_logdet': 0.0, 'worked_05_logdet_raw_u': 0.0, 'worked_05_logdet_u_hat': 0.0}}]

# Every named mistake of checks.py, made by a student's answer cell (tests/test_hints_proven.py judges each on
# top of the solution notebook, so later answers that call the mistaken one inherit it).
MISTAKEN = {
    "planar_logdet": {
        "tanh instead of its derivative": '''
def planar_logdet(z, u, w, b):
    a = z @ w + b
    return torch.log(torch.abs(1 + torch.tanh(a) * (w @ u)))
''',
        "derivative of tanh without the square": '''
def planar_logdet(z, u, w, b):
    a = z @ w + b
    dh = 1 - torch.tanh(a)             # h'(a)
    return torch.log(torch.abs(1 + dh * (w @ u)))
''',
        "log without abs": '''
def planar_logdet(z, u, w, b):
    dh = 1 - torch.tanh(z @ w + b) ** 2
    return torch.log(1 + dh * (w @ u))
''',
        "bias left out of h'": '''
def planar_logdet(z, u, w, b):
    dh = 1 - torch.tanh(z @ w) ** 2    # derivative of tanh(w.z)
    return torch.log(torch.abs(1 + dh * (w @ u)))
''',
    },
    "planar_forward": {
        "u·h broadcast along the wrong axis": '''
def planar_forward(z, u, w, b):
    h = torch.tanh(z @ w + b)
    return z + u * h, planar_logdet(z, u, w, b)
''',
        "points moved along w instead of u": '''
def planar_forward(z, u, w, b):
    h = torch.tanh(z @ w + b)
    return z + h[:, None] * w, planar_logdet(z, u, w, b)
''',
        "tanh instead of its derivative (in the log-det)": '''
def planar_forward(z, u, w, b):
    h = torch.tanh(z @ w + b)
    x = z + h[:, None] * u
    logdet = torch.log(torch.abs(1 + h * (w @ u)))   # det(I + h u w^T) = 1 + h w.u
    return x, logdet
''',
        "log without abs (in the log-det)": '''
def planar_forward(z, u, w, b):
    h = torch.tanh(z @ w + b)
    x = z + h[:, None] * u
    logdet = torch.log(1 + (1 - h ** 2) * (w @ u))
    return x, logdet
''',
    },
    # the worked values as a wrong planar_logdet (exercise 1) computes them: the hint sends the student there
    "worked_05_logdet_raw_u": {
        "û where the raw u was asked": '''
logdet_raw_u = float(planar_logdet(z_ex, planar_u_hat(u_ex, w_ex), w_ex, b_ex))
''',
        "tanh instead of its derivative": '''
def planar_logdet(z, u, w, b):
    a = z @ w + b
    return torch.log(torch.abs(1 + torch.tanh(a) * (w @ u)))
''',
        "derivative of tanh without the square": '''
def planar_logdet(z, u, w, b):
    dh = 1 - torch.tanh(z @ w + b)     # tanh' (square forgotten)
    return torch.log(torch.abs(1 + dh * (w @ u)))
''',
    },
    "planar_u_hat": {
        "‖w‖ instead of ‖w‖²": '''
def planar_u_hat(u, w):
    wu = w @ u
    m = -1 + F.softplus(wu)
    return u + (m - wu) * w / torch.linalg.vector_norm(w)
''',
        "log(1 + exp(·)) instead of softplus": '''
def planar_u_hat(u, w):
    wu = w @ u
    m = -1 + torch.log(1 + torch.exp(wu))
    return u + (m - wu) * w / (w @ w)
''',
        "û not applied (u returned unchanged)": '''
def planar_u_hat(u, w):
    wu = w @ u
    if wu >= -1:                       # already invertible: nothing to fix
        return u
    m = -1 + F.softplus(wu)
    return u + (m - wu) * w / (w @ w)
''',
        "m(a) without the -1": '''
def planar_u_hat(u, w):
    wu = w @ u
    m = F.softplus(wu)                 # m(wu) > 0 > -1
    return u + (m - wu) * w / (w @ w)
''',
    },
    "worked_05_logdet_u_hat": {
        "raw u vs û": '''
logdet_u_hat = float(planar_logdet(z_ex, u_ex, w_ex, b_ex))
''',
        "tanh instead of its derivative": '''
u_hat_ex = planar_u_hat(u_ex, w_ex)
logdet_u_hat = float(torch.log(1 + torch.tanh(z_ex @ w_ex + b_ex) * (w_ex @ u_hat_ex)))
''',
        "derivative of tanh without the square": '''
def planar_logdet(z, u, w, b):
    a = z @ w + b
    return torch.log((1 + (1 - torch.tanh(a)) * (w @ u)).abs())
''',
        "‖w‖ instead of ‖w‖²": '''
wu_ex = w_ex @ u_ex
u_hat_ex = u_ex + (-1 + F.softplus(wu_ex) - wu_ex) * w_ex / w_ex.norm()
logdet_u_hat = float(planar_logdet(z_ex, u_hat_ex, w_ex, b_ex))
''',
    },
    "Planar": {
        "raw u vs û": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))
        self.reparameterize = reparameterize

    def forward(self, z):
        return planar_forward(z, self.u, self.w, self.b)
''',
        "bias as a vector": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(d))          # one bias per coordinate
        self.reparameterize = reparameterize

    def forward(self, z):
        u = planar_u_hat(self.u, self.w) if self.reparameterize else self.u
        h = torch.tanh(z @ self.w[:, None] + self.b)  # (batch, d)
        x = z + h * u
        logdet = torch.log(torch.abs(1 + (1 - h ** 2) @ (self.w * u)))
        return x, logdet
''',
        "tanh instead of its derivative (in the log-det)": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))
        self.reparameterize = reparameterize

    def forward(self, z):
        u = planar_u_hat(self.u, self.w) if self.reparameterize else self.u
        h = torch.tanh(z @ self.w + self.b)
        return z + h[:, None] * u, torch.log(torch.abs(1 + h * (self.w @ u)))
''',
        "log without abs (in the log-det)": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))
        self.reparameterize = reparameterize

    def forward(self, z):
        u = planar_u_hat(self.u, self.w) if self.reparameterize else self.u
        h = torch.tanh(z @ self.w + self.b)
        return z + h[:, None] * u, torch.log(1 + (1 - h ** 2) * (self.w @ u))
''',
        "‖w‖ instead of ‖w‖² (in û)": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))
        self.reparameterize = reparameterize

    def forward(self, z):
        u = self.u
        if self.reparameterize:
            wu = self.w @ self.u
            u = self.u + (-1 + F.softplus(wu) - wu) * self.w / self.w.norm()
        return planar_forward(z, u, self.w, self.b)
''',
    },
    "Planar_trains": {
        "û detached from u": '''
class Planar(nn.Module):
    def __init__(self, d, reparameterize=True):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))
        self.reparameterize = reparameterize

    def forward(self, z):
        u = self.u
        if self.reparameterize:
            u = planar_u_hat(self.u, self.w).detach()   # û is a fixed function of u, w
        return planar_forward(z, u, self.w, self.b)
''',
    },
    "radial_logdet": {
        "Jacobian taken as (1 + βh)·I": '''
def radial_logdet(z, z0, alpha, beta):
    d = z.shape[1]
    h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
    return d * torch.log1p(beta * h)
''',
        "h' = +h² (sign of the derivative)": '''
def radial_logdet(z, z0, alpha, beta):
    d = z.shape[1]
    r = torch.linalg.vector_norm(z - z0, dim=1)
    h = 1 / (alpha + r)
    dh = h ** 2                        # derivative of 1/(alpha + r)
    return (d - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * dh * r)
''',
        "radial direction left out": '''
def radial_logdet(z, z0, alpha, beta):
    d = z.shape[1]
    h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
    return (d - 1) * torch.log1p(beta * h)
''',
        "distance measured from the origin": '''
def radial_logdet(z, z0, alpha, beta):
    d = z.shape[1]
    h = 1 / (alpha + torch.linalg.vector_norm(z, dim=1))
    return (d - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h ** 2)
''',
    },
    "radial_forward": {
        "distance measured from the origin": '''
def radial_forward(z, z0, alpha, beta):
    h = 1 / (alpha + torch.linalg.vector_norm(z, dim=1))
    return z + (beta * h)[:, None] * (z - z0), radial_logdet(z, z0, alpha, beta)
''',
        "shift along z instead of z - z0": '''
def radial_forward(z, z0, alpha, beta):
    h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
    return z + (beta * h)[:, None] * z, radial_logdet(z, z0, alpha, beta)
''',
        "Jacobian taken as (1 + βh)·I (in the log-det)": '''
def radial_forward(z, z0, alpha, beta):
    d = z.shape[1]
    h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
    return z + (beta * h)[:, None] * (z - z0), d * torch.log1p(beta * h)
''',
    },
    "radial_inverse": {
        "the negative root of the quadratic": '''
def radial_inverse(x, z0, alpha, beta):
    rho = torch.linalg.vector_norm(x - z0, dim=1)
    c = alpha + beta - rho
    r = 0.5 * (-c - torch.sqrt(c ** 2 + 4 * alpha * rho))
    z = z0 + (x - z0) / (1 + beta / (alpha + r))[:, None]
    return z, -radial_logdet(z, z0, alpha, beta)
''',
        "the negative root of the quadratic, also in the log-det": '''
def radial_inverse(x, z0, alpha, beta):
    d = x.shape[1]
    rho = torch.linalg.vector_norm(x - z0, dim=1)
    c = alpha + beta - rho
    r = 0.5 * (-c - torch.sqrt(c ** 2 + 4 * alpha * rho))
    h = 1 / (alpha + r)
    z = z0 + (x - z0) / (1 + beta * h)[:, None]
    return z, -((d - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h ** 2))
''',
        "log-det of the inverse evaluated at x": '''
def radial_inverse(x, z0, alpha, beta):
    rho = torch.linalg.vector_norm(x - z0, dim=1)
    c = alpha + beta - rho
    r = 0.5 * (torch.sqrt(c ** 2 + 4 * alpha * rho) - c)
    z = z0 + (x - z0) / (1 + beta / (alpha + r))[:, None]
    return z, -radial_logdet(x, z0, alpha, beta)
''',
        "inverted by subtracting the shift computed at x": '''
def radial_inverse(x, z0, alpha, beta):
    h = 1 / (alpha + torch.linalg.vector_norm(x - z0, dim=1))
    z = x - (beta * h)[:, None] * (x - z0)
    return z, -radial_logdet(x, z0, alpha, beta)
''',
        "Jacobian taken as (1 + βh)·I (in the log-det)": '''
def radial_inverse(x, z0, alpha, beta):
    d = x.shape[1]
    rho = torch.linalg.vector_norm(x - z0, dim=1)
    c = alpha + beta - rho
    r = 0.5 * (torch.sqrt(c ** 2 + 4 * alpha * rho) - c)
    h = 1 / (alpha + r)
    z = z0 + (x - z0) / (1 + beta * h)[:, None]
    return z, -d * torch.log1p(beta * h)
''',
    },
}
