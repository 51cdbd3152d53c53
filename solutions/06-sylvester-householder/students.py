"""Sample-class students for lesson 06 (Sylvester and Householder flows): one classic mistake each.

Each student is the solution notebook with the listed solution cells replaced. ``expect_points`` lists every
test cell that loses points (the others keep full points); ``expect_message`` is a fragment of the feedback
that names the mistake. A wrong Householder reflection also breaks the functions built on it
(``householder_product`` and the Householder flow); a mistake is charged once where one call of it explains
their answer, and charged again where the reflection is chained.
Verified with the real Judge on the executed notebook (demo cells blanked): /work/scratch_06/grade.py.
"""

LESSON = "06-sylvester-householder"

STUDENTS = [
    {
        "id": "l06-sylvester-missing-dh",
        "lesson": LESSON,
        "patches": {
            "sylvester_logdet": '''def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    """log|det(I_m + B^T A)| -- forgets the derivative h'."""
    m = A.shape[1]
    small = torch.eye(m, dtype=z.dtype) + B.T @ A
    return torch.linalg.slogdet(small).logabsdet.expand(z.shape[0])
''',
        },
        "expect_points": {"sylvester_logdet": 0.0},
        "expect_message": "missing h′",
    },
    {
        "id": "l06-sylvester-i-d-vs-i-m",
        "lesson": LESSON,
        "patches": {
            "sylvester_logdet": '''def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    """Uses the d x d matrix A B^T where the m x m matrix B^T A belongs."""
    _, dh = h_and_dh(z @ B + b, activation, negative_slope)
    d = A.shape[0]
    big = torch.eye(d, dtype=z.dtype) + dh.unsqueeze(2) * (A @ B.T)
    return torch.linalg.slogdet(big).logabsdet
''',
        },
        # only the one-neuron worked example (1 of 8 cases) survives: 3 * 1/8. The shapes do not fit when
        # m != d, so sylvester_forward (which calls it) raises on 5 of 8 cases too: 1 * 3/8 (an error raised
        # inside the helper is not excused: the caller returns nothing to judge)
        "expect_points": {"sylvester_logdet": 0.375, "sylvester_forward": 0.375},
        "expect_message": "A Bᵀ where Bᵀ A belongs",
    },
    {
        "id": "l06-sylvester-triangular-shortcut",
        "lesson": LESSON,
        "patches": {
            "sylvester_logdet": '''def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    """Sums over the diagonal of B^T A as if it were triangular (pyro-style)."""
    _, dh = h_and_dh(z @ B + b, activation, negative_slope)
    return torch.log(torch.abs(1 + dh * torch.diagonal(B.T @ A))).sum(dim=1)
''',
        },
        # exact only for one neuron (the worked example, 1 of 8 cases): 3 * 1/8
        "expect_points": {"sylvester_logdet": 0.375},
        "expect_message": "triangular shortcut on a matrix that is not triangular",
    },
    {
        "id": "l06-qr-sylvester-missing-dh",
        "lesson": LESSON,
        "patches": {
            "qr_sylvester_forward": '''def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh",
                         negative_slope=0.01):
    """Right map, log-det without h'."""
    a = z @ Q @ R_tilde.T + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R).T
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + diagonal)).sum().expand(z.shape[0])
''',
        },
        "expect_points": {"qr_sylvester_forward": 0.0},
        "expect_message": "missing h′",
    },
    {
        "id": "l06-qr-sylvester-pyro-transposes",
        "lesson": LESSON,
        "patches": {
            "qr_sylvester_forward": '''def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh",
                         negative_slope=0.01):
    """Column-vector matrices used on row vectors, as in pyro's Sylvester transform."""
    a = z @ (R_tilde @ Q.T) + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R)
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + dh * diagonal)).sum(dim=1)
''',
        },
        "expect_points": {"qr_sylvester_forward": 0.0},
        "expect_message": "column-vector matrices in row-vector code",
    },
    {
        "id": "l06-householder-not-normalised",
        "lesson": LESSON,
        "patches": {
            "householder_reflect": '''def householder_reflect(z, v):
    """The lesson notes' z - 2 v v^T z, which assumes ||v|| = 1."""
    return z - 2 * (z @ v).unsqueeze(1) * v
''',
        },
        # the product and the flow are built on the reflection. A mistake is charged once: where one call of
        # the wrong reflection explains their whole answer (one vector; the product's 2-D case with a unit
        # v_1) they are excused and the feedback names householder_reflect; chained calls are charged
        "expect_points": {"householder_reflect": 0.0, "householder_reflect_gradient": 0.0,
                          "householder_product": 0.5, "householder_forward": 0.2, "householder_inverse": 0.2},
        "expect_message": "v not normalised",
    },
    {
        "id": "l06-householder-product-reversed",
        "lesson": LESSON,
        "patches": {
            "householder_product": '''def householder_product(vs):
    """Builds H_K ... H_1 instead of H_1 ... H_K."""
    Q = torch.eye(vs.shape[1], dtype=vs.dtype)
    for v in vs.flip(0):
        Q = householder_reflect(Q, v)
    return Q
''',
        },
        # a single reflection (1 of 4 cases) is the same either way: 1 * 1/4
        "expect_points": {"householder_product": 0.25},
        "expect_message": "reflections multiplied in reverse order",
    },
    {
        "id": "l06-householder-log-minus-one",
        "lesson": LESSON,
        "patches": {
            "householder_forward": '''def householder_forward(z, vs):
    """Adds log(det H) = log(-1) for every reflection."""
    logdet = torch.zeros(z.shape[0], dtype=z.dtype)
    for v in vs:
        z = householder_reflect(z, v)
        logdet = logdet + torch.log(torch.tensor(-1.0, dtype=z.dtype))
    return z, logdet
''',
        },
        "expect_points": {"householder_forward": 0.0},
        "expect_message": "log-det of a reflection taken as log(−1)",
    },
    {
        "id": "l06-householder-inverse-wrong-order",
        "lesson": LESSON,
        "patches": {
            "householder_inverse": '''def householder_inverse(x, vs):
    """Undoes the reflections in the forward order (vs[0] first)."""
    for v in vs:
        x = householder_reflect(x, v)
    return x, torch.zeros(x.shape[0], dtype=x.dtype)
''',
        },
        # a single reflection (1 of 5 cases) is its own inverse in either order: 1 * 1/5
        "expect_points": {"householder_inverse": 0.2},
        "expect_message": "reflections undone in the wrong order",
    },
]

# One student's answer cell for every named mistake of checks.py, each making exactly that mistake
# (tests/test_hints_proven.py runs it on top of the solution notebook and asks the judge to name it).
REFLECT_NORM_ITEM = '''
def householder_reflect(z, v):
    """H z = z - 2 v (v^T z) / ||v||^2 for each row of z; returns shape (batch, d)."""
    norm = torch.linalg.vector_norm(v).item()  # a plain number: autograd sees a constant
    v_unit = v / norm
    return z - 2 * (z @ v_unit).unsqueeze(1) * v_unit
'''

REFLECT_NO_GRAD = '''
def householder_reflect(z, v):
    """H z = z - 2 v (v^T z) / ||v||^2 for each row of z; returns shape (batch, d)."""
    with torch.no_grad():
        v_unit = v / v.norm()
        return z - 2 * (z @ v_unit)[:, None] * v_unit[None, :]
'''

FORWARD_IN_PLACE = '''
def householder_forward(z, vs):
    """x = H_K ... H_1 z (vs[0] first); returns (x, log|det dx/dz|), log-det shape (batch,)."""
    x = z
    for v in vs:
        v = v / v.norm()
        x -= 2 * (x @ v).unsqueeze(1) * v  # edits the caller's z
    return x, torch.zeros(x.shape[0], dtype=x.dtype)
'''

# correct answers written differently from the key (einsum, det instead of slogdet, a Householder matrix
# formed explicitly, a reduce), and the quiz answers under the names the cells state
UNUSUAL_STYLE = {
    "sylvester_logdet": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    _, dh = h_and_dh(torch.einsum("bd,dm->bm", z, B) + b, activation, negative_slope)
    small = torch.eye(A.shape[1], dtype=z.dtype) + torch.einsum("bi,ij->bij", dh, B.T @ A)
    sign, logabs = torch.linalg.slogdet(small)
    return logabs
''',
    "sylvester_forward": '''
def sylvester_forward(z, A, B, b, activation="tanh", negative_slope=0.01):
    h = h_and_dh(z @ B + b, activation=activation, negative_slope=negative_slope)[0]
    return z + torch.einsum("bm,dm->bd", h, A), sylvester_logdet(z, A, B, b, activation, negative_slope)
''',
    "householder_reflect": '''
def householder_reflect(z, v):
    v_hat = torch.nn.functional.normalize(v, dim=0)
    H = torch.eye(v.shape[0], dtype=v.dtype) - 2 * torch.outer(v_hat, v_hat)
    return z @ H  # H is symmetric: each row times H^T = H
''',
    "householder_product": '''
import functools


def householder_product(vs):
    eye = torch.eye(vs.shape[1], dtype=vs.dtype)
    return functools.reduce(householder_reflect, list(vs), eye)
''',
    "qr_sylvester_forward": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    B, A = Q @ R_tilde.T, Q @ R
    h, dh = h_and_dh(z @ B + b, activation, negative_slope)
    products = R_tilde.diagonal() * R.diagonal()
    return torch.addmm(z, h, A.T), (1 + dh * products).abs().log().sum(-1)
''',
    "householder_forward": '''
def householder_forward(z, vs):
    x = z.clone()
    for k in range(vs.shape[0]):
        x = householder_reflect(x, vs[k])
    return x, x.new_zeros(x.shape[0])
''',
    "householder_inverse": '''
def householder_inverse(x, vs):
    z = x
    for k in reversed(range(len(vs))):
        z = householder_reflect(z, vs[k])
    return z, torch.zeros_like(z[:, 0])
''',
    "answer_identity_test": "answer_identity_test = 'b'\n",
    "answer_householder_training": "answer_householder_training = 'C'\n",
    "answer_cost": "answer_cost = ' D'\n",
    "det_three_reflections": "det_three_reflections = -1\n",
    "answer_orthogonal_m": "answer_orthogonal_m = 'a'\n",
}

STUDENTS += [
    {
        "id": "l06-correct-unusual-style",
        "lesson": LESSON,
        "about": "every answer right but written unlike the key (einsum, an explicit Householder matrix, "
                 "functools.reduce, addmm); quiz answers under the names the cells state",
        "patches": UNUSUAL_STYLE,
        "expect_points": {},
    },
    {
        "id": "l06-householder-norm-item",
        "lesson": LESSON,
        "about": "the reflection normalises v by ‖v‖.item(): every value is right, but the gradient that trains v "
                 "is wrong, so only the gradient check's point is lost",
        "patches": {"householder_reflect": REFLECT_NORM_ITEM},
        "expect_points": {"householder_reflect_gradient": 0.0},
        "expect_message": "norm taken out of the graph",
    },
    {
        "id": "l06-householder-forward-in-place",
        "lesson": LESSON,
        "about": "the Householder flow reflects its input z in place (x = z; x -= ...): the caller's points change",
        "patches": {"householder_forward": FORWARD_IN_PLACE},
        "expect_points": {"householder_forward": 0.0},
        "expect_message": ("changed its input `z` in place", "in-place edit of an input"),
    },
    {
        "id": "l06-helper-only-sylvester-logdet",
        "lesson": LESSON,
        "about": "only sylvester_logdet is wrong (the triangular shortcut); sylvester_forward returns it as its "
                 "log-det but is graded on its points, so it keeps its point",
        "patches": {"sylvester_logdet": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    """log|det(I_m + diag(h'(B^T z + b)) B^T A)| for each row of z; shape (batch,)."""
    _, dh = h_and_dh(z @ B + b, activation, negative_slope)
    return torch.log(torch.abs(1 + dh * torch.diagonal(B.T @ A))).sum(dim=1)
'''},
        "expect_points": {"sylvester_logdet": 3 / 8},
        "expect_message": "triangular shortcut on a matrix that is not triangular",
    },
]

MISTAKEN = {
    "sylvester_logdet": {
        "missing h′": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    m = A.shape[1]
    small = torch.eye(m, dtype=z.dtype) + B.T @ A  # det(I_m + B^T A)
    return torch.linalg.slogdet(small).logabsdet.expand(z.shape[0])
''',
        "h instead of h′": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    h, dh = h_and_dh(z @ B + b, activation, negative_slope)
    m = A.shape[1]
    small = torch.eye(m, dtype=z.dtype) + h.unsqueeze(2) * (B.T @ A)
    return torch.linalg.slogdet(small).logabsdet
''',
        "A Bᵀ where Bᵀ A belongs (I_d vs I_m)": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    _, dh = h_and_dh(z @ B + b, activation, negative_slope)
    d = A.shape[0]
    big = torch.eye(d, dtype=z.dtype) + dh.unsqueeze(2) * (A @ B.T)
    return torch.linalg.slogdet(big).logabsdet
''',
        "triangular shortcut on a matrix that is not triangular": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    _, dh = h_and_dh(z @ B + b, activation, negative_slope)
    diagonal = torch.diagonal(B.T @ A)  # the determinant as the product of the diagonal
    return torch.log(torch.abs(1 + dh * diagonal)).sum(dim=1)
''',
        "A and B swapped": '''
def sylvester_logdet(z, A, B, b, activation="tanh", negative_slope=0.01):
    _, dh = h_and_dh(z @ A + b, activation, negative_slope)  # a = A^T z + b
    m = A.shape[1]
    small = torch.eye(m, dtype=z.dtype) + dh.unsqueeze(2) * (A.T @ B)
    return torch.linalg.slogdet(small).logabsdet
''',
    },
    "sylvester_forward": {
        "A and B swapped": '''
def sylvester_forward(z, A, B, b, activation="tanh", negative_slope=0.01):
    h, _ = h_and_dh(z @ A + b, activation, negative_slope)
    return z + h @ B.T, sylvester_logdet(z, A, B, b, activation, negative_slope)
''',
        "A not transposed in row form": '''
def sylvester_forward(z, A, B, b, activation="tanh", negative_slope=0.01):
    h, _ = h_and_dh(z @ B + b, activation, negative_slope)
    return z + h @ A, sylvester_logdet(z, A, B, b, activation, negative_slope)
''',
    },
    "qr_sylvester_forward": {
        "missing h′": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ Q @ R_tilde.T + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R).T
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + diagonal)).sum() * torch.ones(z.shape[0], dtype=z.dtype)
''',
        "h instead of h′": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ Q @ R_tilde.T + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R).T
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + h * diagonal)).sum(dim=1)
''',
        "log without abs": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ Q @ R_tilde.T + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R).T
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(1 + dh * diagonal).sum(dim=1)
''',
        "R̃ not transposed in the pre-activation": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ Q @ R_tilde + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R).T
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + dh * diagonal)).sum(dim=1)
''',
        "column-vector matrices in row-vector code (pyro's bug)": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ (R_tilde @ Q.T) + b  # R~ Q^T z + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R)  # Q R h
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + dh * diagonal)).sum(dim=1)
''',
        "QR not transposed in the output": '''
def qr_sylvester_forward(z, Q, R, R_tilde, b, activation="tanh", negative_slope=0.01):
    a = z @ Q @ R_tilde.T + b
    h, dh = h_and_dh(a, activation, negative_slope)
    x = z + h @ (Q @ R)
    diagonal = torch.diagonal(R_tilde) * torch.diagonal(R)
    return x, torch.log(torch.abs(1 + dh * diagonal)).sum(dim=1)
''',
    },
    "householder_reflect": {
        "v not normalised": '''
def householder_reflect(z, v):
    return z - 2 * (z @ v).unsqueeze(1) * v  # H z = z - 2 v v^T z
''',
        "divided by ‖v‖ instead of ‖v‖²": '''
def householder_reflect(z, v):
    return z - 2 * (z @ v).unsqueeze(1) * v / torch.linalg.vector_norm(v)
''',
        "projection instead of reflection (factor 2 missing)": '''
def householder_reflect(z, v):
    v_unit = v / torch.linalg.vector_norm(v)
    return z - (z @ v_unit).unsqueeze(1) * v_unit
''',
    },
    "householder_reflect_gradient": {
        "norm taken out of the graph (.item(), float(), .detach())": REFLECT_NORM_ITEM,
        "no gradient reaches z or v": REFLECT_NO_GRAD,
    },
    "householder_product": {
        "reflections multiplied in reverse order": '''
def householder_product(vs):
    Q = torch.eye(vs.shape[1], dtype=vs.dtype)
    for v in vs:
        Q = householder_reflect(Q.T, v).T  # Q <- H_k Q
    return Q
''',
        "v not normalised": '''
def householder_product(vs):
    d = vs.shape[1]
    Q = torch.eye(d, dtype=vs.dtype)
    for v in vs:
        Q = Q @ (torch.eye(d, dtype=vs.dtype) - 2 * torch.outer(v, v))
    return Q
''',
    },
    "householder_forward": {
        "log-det of a reflection taken as log(−1)": '''
def householder_forward(z, vs):
    logdet = torch.zeros(z.shape[0], dtype=z.dtype)
    for v in vs:
        z = householder_reflect(z, v)
        logdet = logdet + torch.log(torch.tensor(-1.0, dtype=z.dtype))  # det H = -1
    return z, logdet
''',
        "determinant returned instead of log|det|": '''
def householder_forward(z, vs):
    det = torch.ones(z.shape[0], dtype=z.dtype)
    for v in vs:
        z = householder_reflect(z, v)
        det = -det  # det H = -1
    return z, det
''',
        "reflections applied in reverse order": '''
def householder_forward(z, vs):
    for v in vs.flip(0):  # x = H_K ... H_1 z
        z = householder_reflect(z, v)
    return z, torch.zeros(z.shape[0], dtype=z.dtype)
''',
    },
    "householder_inverse": {
        "reflections undone in the wrong order": '''
def householder_inverse(x, vs):
    for v in vs:  # each H_k is its own inverse
        x = householder_reflect(x, v)
    return x, torch.zeros(x.shape[0], dtype=x.dtype)
''',
        "log-det of a reflection taken as log(−1)": '''
def householder_inverse(x, vs):
    logdet = torch.zeros(x.shape[0], dtype=x.dtype)
    for v in vs.flip(0):
        x = householder_reflect(x, v)
        logdet = logdet + torch.log(torch.tensor(-1.0, dtype=x.dtype))
    return x, logdet
''',
    },
    "quiz_06_det_three_reflections": {
        "|det| instead of det": '''
det_three_reflections = 1.0
''',
        "log|det| instead of det": '''
det_three_reflections = 0.0
''',
    },
}
