"""Lesson 01 sample students: each classic mistake of the change of variables."""

_AFFINE = '''def scalar_affine(z, a, b):
    x = a * z + b
    logdet = {forward}
    return x, logdet


def scalar_affine_inverse(x, a, b):
    z = (x - b) / a
    logdet = -torch.log(torch.abs(a)).expand_as(x).reshape(x.shape[0], -1).sum(dim=1)
    return z, logdet
'''

_COV = '''def change_of_variables_log_prob(x, inverse):
    z, logdet = inverse(x)
    return standard_normal_log_prob(z.reshape(z.shape[0], -1)) {sign} logdet


def scalar_affine_log_prob(x, a, b):
    return change_of_variables_log_prob(x, lambda v: scalar_affine_inverse(v, a, b))
'''

LESSON = "01-change-of-variables"

# correct code written in unusual ways (einsum, broadcast_to, reciprocal, functools.reduce, a determinant),
# quiz letters in lower case or with spaces, in the variables the cells name: full marks
_UNUSUAL = {
    "standard_normal_log_prob": '''def standard_normal_log_prob(z):
    return -0.5 * torch.einsum("bi,bi->b", z, z) - z.shape[1] * math.log(math.sqrt(2 * math.pi))
''',
    "scalar_affine": '''def scalar_affine(z, a, b):
    return torch.addcmul(b.expand_as(z), a.expand_as(z), z), torch.broadcast_to(a.abs().log(), z.shape).sum(-1)


def scalar_affine_inverse(x, a, b):
    return (x - b) * torch.reciprocal(a), -torch.broadcast_to(a.abs().log(), x.shape).sum(-1)
''',
    "change_of_variables_log_prob": '''def change_of_variables_log_prob(x, inverse):
    z, log_abs_det = inverse(x)
    return torch.add(standard_normal_log_prob(z), log_abs_det)


def scalar_affine_log_prob(x, a, b):
    z = (x - b) / a  # the formula written out instead of calling change_of_variables_log_prob
    return standard_normal_log_prob(z) - torch.log(torch.abs(a)).expand_as(x).sum(dim=1)
''',
    "compose_forward": '''import functools


def compose_forward(z, layers):
    def step(state, layer):
        x, total = layer(state[0])
        return x, state[1] + total
    return functools.reduce(step, layers, (z, z.new_zeros(z.shape[0])))
''',
    "rotation_matrix": '''def rotation_matrix(theta):
    c, s = theta.cos(), theta.sin()
    return torch.stack((c, -s, s, c)).reshape(2, 2)
''',
    "rotation_log_abs_det": "rotation_log_abs_det = math.log(abs(torch.linalg.det(rotation_matrix(torch.tensor(0.3)))))\n",
    "answer_positive_log_prob": 'answer_positive_log_prob = "b"\n',
    "answer_q1": 'answer_q1 = "c"\n',
    "answer_q5": 'answer_q5 = " C "\n',
    "answer_q7": "answer_q7 = 'B'\n",
}

STUDENTS = [
    {"id": "l01-sign-of-logdet", "lesson": LESSON,
     "patches": {"change_of_variables_log_prob": _COV.format(sign="-")},
     "expect_points": {"change_of_variables_log_prob": 0, "scalar_affine_log_prob": 0},
     "expect_message": "sign of the log-det"},
    {"id": "l01-log-without-abs", "lesson": LESSON,
     "patches": {"scalar_affine": _AFFINE.format(
         forward="torch.log(a).expand_as(z).reshape(z.shape[0], -1).sum(dim=1)")},
     "expect_points": {"scalar_affine": 1 / 3},
     "expect_message": "log without abs"},
    {"id": "l01-logdet-not-summed", "lesson": LESSON,
     "patches": {"scalar_affine": _AFFINE.format(forward="torch.log(torch.abs(a)).expand_as(z)")},
     "expect_points": {"scalar_affine": 0},
     "expect_message": "sum"},
    {"id": "l01-missing-constant", "lesson": LESSON,
     "patches": {"standard_normal_log_prob": '''def standard_normal_log_prob(z):
    return -0.5 * (z ** 2).sum(dim=1)
'''},
     # change_of_variables_log_prob is right given its helper (charged once); scalar_affine_log_prob reaches the
     # helper through a function argument (a lambda), which the judge cannot trace, so it is still charged
     "expect_points": {"standard_normal_log_prob": 0, "scalar_affine_log_prob": 0},
     "expect_message": ("missing normalising constant", "comes from your `standard_normal_log_prob`")},
    {"id": "l01-compose-last-logdet-only", "lesson": LESSON,
     "patches": {"compose_forward": '''def compose_forward(z, layers):
    for layer in layers:
        z, logdet = layer(z)
    return z, logdet
'''},
     "expect_points": {"compose_forward": 2 / 3},
     "expect_message": "only the last layer's log-det"},
    {"id": "l01-rotation-clockwise", "lesson": LESSON,
     "patches": {"rotation_matrix": '''def rotation_matrix(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, s]), torch.stack([-s, c])])
'''},
     "expect_points": {"rotation_matrix": 0},
     "expect_message": "clockwise rotation"},
    {"id": "l01-unusual-but-right", "lesson": LESSON, "patches": _UNUSUAL, "expect_points": {},
     "about": "correct code in unusual ways and quiz answers as the cells name them: full marks"},
    # a helper-only error: the inverse returns the forward's log-det. scalar_affine_log_prob adds that log-det
    # to a base term; the judge excuses only an affine use of a helper's answer (a·answer + b with numbers a, b),
    # which holds on the one-point case alone, so 2 of 3 cases still cost scalar_affine_log_prob's points; the
    # message names the helper
    {"id": "l01-helper-inverse-logdet", "lesson": LESSON,
     "patches": {"scalar_affine": _AFFINE.format(
         forward="torch.log(torch.abs(a)).expand_as(z).reshape(z.shape[0], -1).sum(dim=1)").replace(
         "logdet = -torch.log", "logdet = torch.log")},
     "expect_points": {"scalar_affine_inverse": 0},  # scalar_affine_log_prob is right given its helper
     "expect_message": ("forward log-det returned by the inverse", "comes from your `scalar_affine_inverse`")},
    {"id": "l01-quiz-forward-jacobian", "lesson": LESSON,
     "patches": {"answer_q1": 'answer_q1 = "B"\n'},
     "expect_points": {"quiz_01_q1": 0},
     "expect_message": "your answer 'B'"},
]

# One student's answer cell for every named mistake of checks.py, each making exactly that mistake
# (tests/test_hints_proven.py runs it on top of the solution notebook and asks the judge to name it).
MISTAKEN = {
    "standard_normal_log_prob": {
        "missing normalising constant": '''
def standard_normal_log_prob(z):
    return -0.5 * (z ** 2).sum(dim=1)
''',
        "constant counted once, not per dimension": '''
def standard_normal_log_prob(z):
    return -0.5 * (z ** 2).sum(dim=1) - 0.5 * math.log(2 * math.pi)
''',
    },
    "scalar_affine": {
        "log without abs": '''
def scalar_affine(z, a, b):
    x = a * z + b
    logdet = torch.log(a).expand_as(z).reshape(z.shape[0], -1).sum(dim=1)
    return x, logdet
''',
        "log-det of one coordinate only": '''
def scalar_affine(z, a, b):
    x = a * z + b
    dx_dz = a * torch.ones_like(z)  # the derivative of x = a z + b at every point
    logdet = torch.log(torch.abs(dx_dz[:, 0]))
    return x, logdet
''',
    },
    "scalar_affine_inverse": {
        "forward log-det returned by the inverse": '''
def scalar_affine_inverse(x, a, b):
    z = (x - b) / a
    logdet = torch.log(torch.abs(a)).expand_as(x).reshape(x.shape[0], -1).sum(dim=1)
    return z, logdet
''',
    },
    "change_of_variables_log_prob": {
        "sign of the log-det": '''
def change_of_variables_log_prob(x, inverse):
    z, logdet = inverse(x)
    return standard_normal_log_prob(z) - logdet
''',
        "missing log-det": '''
def change_of_variables_log_prob(x, inverse):
    z, logdet = inverse(x)
    return standard_normal_log_prob(z)
''',
        "base density evaluated at x instead of f⁻¹(x)": '''
def change_of_variables_log_prob(x, inverse):
    z, logdet = inverse(x)
    return standard_normal_log_prob(x) + logdet
''',
    },
    "scalar_affine_log_prob": {
        "missing log-det": '''
def scalar_affine_log_prob(x, a, b):
    z = (x - b) / a
    return standard_normal_log_prob(z)
''',
        "f instead of f⁻¹ (log-det of the forward map added)": '''
def scalar_affine_log_prob(x, a, b):
    z, _ = scalar_affine_inverse(x, a, b)
    _, logdet = scalar_affine(z, a, b)  # the log-det of the flow x = a z + b
    return standard_normal_log_prob(z) + logdet
''',
        "log without abs": '''
def scalar_affine_log_prob(x, a, b):
    z = (x - b) / a
    return standard_normal_log_prob(z) - torch.log(a).expand_as(x).sum(dim=1)
''',
    },
    "compose_forward": {
        "only the last layer's log-det": '''
def compose_forward(z, layers):
    for layer in layers:
        z, logdet = layer(z)
    return z, logdet
''',
        "layers applied in reverse order": '''
def compose_forward(z, layers):
    logdet = torch.zeros(z.shape[0], dtype=z.dtype)
    for layer in reversed(layers):  # x = f_K(...f_1(z)): f_K first
        z, layer_logdet = layer(z)
        logdet = logdet + layer_logdet
    return z, logdet
''',
    },
    "rotation_matrix": {
        "clockwise rotation (matrix transposed)": '''
def rotation_matrix(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, s]), torch.stack([-s, c])])
''',
    },
}
