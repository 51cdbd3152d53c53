"""Sample-class students for lesson 06 (Sylvester and Householder flows): one classic mistake each.

Each student is the solution notebook with the listed solution cells replaced. ``expect_points`` lists every
test cell that loses points (the others keep full points); ``expect_message`` is a fragment of the feedback
that names the mistake. A wrong Householder reflection also breaks the functions built on it
(``householder_product`` and the Householder flow), so that student loses those points too.
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
        "expect_points": {"test-sylvester-logdet": 0.0},
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
        # only the one-neuron worked example (1 of 7 cases) survives: 3 * 1/7. The shapes do not fit when
        # m != d, so sylvester_forward (which calls it) raises on 4 of 7 cases too: 1 * 3/7
        "expect_points": {"test-sylvester-logdet": 0.4286, "test-sylvester-forward": 0.4286},
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
        # exact only for one neuron (the worked example, 1 of 7 cases): 3 * 1/7
        "expect_points": {"test-sylvester-logdet": 0.4286},
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
        "expect_points": {"test-qr-sylvester-forward": 0.0},
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
        "expect_points": {"test-qr-sylvester-forward": 0.0},
        "expect_message": "column-vector matrices in row-vector code",
    },
    {
        "id": "l06-householder-not-normalised",
        "lesson": LESSON,
        "patches": {
            "householder_reflect": '''def householder_reflect(z, v):
    """The seeds' z - 2 v v^T z, which assumes ||v|| = 1."""
    return z - 2 * (z @ v).unsqueeze(1) * v
''',
        },
        # the product and the flow are built on the reflection, so they are wrong too
        "expect_points": {"test-householder-reflect": 0.0, "test-householder-product": 0.0,
                          "test-householder-forward": 0.0, "test-householder-inverse": 0.0},
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
        "expect_points": {"test-householder-product": 0.25},
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
        "expect_points": {"test-householder-forward": 0.0},
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
        # a single reflection (1 of 4 cases) is its own inverse in either order: 1 * 1/4
        "expect_points": {"test-householder-inverse": 0.25},
        "expect_message": "reflections undone in the wrong order",
    },
]
