"""Sample-class students for lesson 10 (continuous-time flows and flow matching): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points. The solver and the log-likelihood call the student's own helpers
with a field or the dynamics as an argument (``rk4_step(f, …)``, ``divergence(field, …)``): calls the judge
cannot replay, so a mistake in such a helper is charged to its callers too (listed where it happens).
"""

LESSON = "10-continuous-flows"

_DIVERGENCE = '''
def divergence(field, x, t):
    """Exact divergence sum_i dv_i/dx_i of field(x, t), shape (batch,)."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        v = field(x, t)
{body}
'''

DIVERGENCE_ALL_ENTRIES = _DIVERGENCE.format(body='''\
        (grad,) = torch.autograd.grad(v.sum(), x, create_graph=True)  # 1^T J: column sums
    return grad.sum(dim=1)''')

DIVERGENCE_NEGATED = _DIVERGENCE.format(body='''\
        div = x.new_zeros(x.shape[0])
        for i in range(x.shape[1]):
            (row,) = torch.autograd.grad(v[:, i].sum(), x, create_graph=True)
            div = div - row[:, i]  # "the log-density falls": the minus put here instead of in the dynamics
    return div''')

UNUSUAL_DIVERGENCE = '''
def divergence(field, x, t):
    """The trace of the full batch Jacobian from torch.func (vmap over the batch of jacrev)."""
    def one(xi):
        return field(xi[None], t if not torch.is_tensor(t) or t.dim() == 0 else None)[0]
    if torch.is_tensor(t) and t.dim() > 0:  # one time per sample: loop over the batch
        return torch.stack([torch.func.jacrev(lambda xi: field(xi[None], ti[None])[0])(xi).trace()
                            for xi, ti in zip(x, t)])
    return torch.vmap(lambda xi: torch.func.jacrev(one)(xi).trace())(x)
'''

_HUTCHINSON = '''
def hutchinson_divergence(field, x, t, eps):
    """Hutchinson's estimate eps^T (dv/dx) eps, per sample."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        v = field(x, t)
{body}
'''

_NOISE = '''
def hutchinson_noise(x):
    """Independent signs +1 / -1, same shape and dtype as x."""
    return {expression}
'''

NOISE_NONZERO_MEAN = _NOISE.format(expression="torch.randint(0, 2, x.shape, dtype=x.dtype)  # 0 or 1")
NOISE_UNIFORM = _NOISE.format(expression="2 * torch.rand_like(x) - 1  # uniform on [-1, 1]")
NOISE_GAUSSIAN = _NOISE.format(expression="torch.randn_like(x)  # Gaussian noise: E[eps eps^T] = I as well")

_STEP = '''
def {name}(f, t, y, dt):
    """One step of dy/dt = f(t, y)."""
{body}
'''

RK4_FROZEN_TIME = _STEP.format(name="rk4_step", body='''\
    k1 = f(t, y)
    k2 = f(t, y + dt / 2 * k1)  # the stages all use time t
    k3 = f(t, y + dt / 2 * k2)
    k4 = f(t, y + dt * k3)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)''')

RK4_EQUAL_WEIGHTS = _STEP.format(name="rk4_step", body='''\
    k1 = f(t, y)
    k2 = f(t + dt / 2, y + dt / 2 * k1)
    k3 = f(t + dt / 2, y + dt / 2 * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + dt * (k1 + k2 + k3 + k4) / 4''')

_ODEINT = '''
def odeint_fixed(f, y0, t0, t1, steps, method="rk4"):
    """y(t1) for dy/dt = f(t, y), y(t0) = y0, in `steps` equal steps."""
    step = rk4_step if method == "rk4" else euler_step
{body}
'''

ODEINT_ABS_STEP = _ODEINT.format(body='''\
    h = abs(t1 - t0) / steps  # a step size is positive... (not here: t1 < t0 integrates backwards)
    y, t = y0, t0
    for _ in range(steps):
        y = step(f, t, y, h)
        t = t + h
    return y''')

UNUSUAL_ODEINT = _ODEINT.format(body='''\
    times = torch.linspace(t0, t1, steps + 1, dtype=torch.float64).tolist()  # the grid, endpoints exact
    y = y0
    for a, b in zip(times[:-1], times[1:]):
        y = step(f, a, y, b - a)
    return y''')

_AUGMENTED = '''
def augmented_dynamics(field, t, state):
    """d/dt (x, l) = (v(x, t), -div v(x, t))."""
    x = state[:, :-1]
{body}
'''

AUGMENTED_PLUS_DIVERGENCE = _AUGMENTED.format(body='''\
    return torch.cat([field(x, t), divergence(field, x, t)[:, None]], dim=1)  # the log-density change: +div?''')

_LOG_PROB = '''
def cnf_log_prob(field, x, steps=20):
    """Exact log p_1(x): integrate (x, 0) from t = 1 back to t = 0, then log p_0(z) - Delta."""
    state = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
{body}
'''

LOG_PROB_SIGN = _LOG_PROB.format(body='''\
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 1.0, 0.0, steps)
    return StandardNormal(x.shape[1]).log_prob(end[:, :-1]) + end[:, -1]  # adds the integral''')

LOG_PROB_NO_BASE = _LOG_PROB.format(body='''\
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 1.0, 0.0, steps)
    return -end[:, -1]  # the change of log-density along the path, and nothing else''')

LOG_PROB_FORWARD = _LOG_PROB.format(body='''\
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 0.0, 1.0, steps)  # t from 0 to 1
    return StandardNormal(x.shape[1]).log_prob(end[:, :-1]) - end[:, -1]''')

LOG_PROB_BASE_AT_X = _LOG_PROB.format(body='''\
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 1.0, 0.0, steps)
    return StandardNormal(x.shape[1]).log_prob(x) - end[:, -1]  # the base density of the data point''')

_FM = '''
def flow_matching_loss(field, x1, x0=None, t=None):
    """Mean over the batch of || v(x_t, t) - (x1 - x0) ||^2 with x_t = (1 - t) x0 + t x1."""
    if x0 is None:
        x0 = torch.randn_like(x1)
    if t is None:
        t = torch.rand(x1.shape[0], dtype=x1.dtype)
{body}
'''

FM_TARGET_REVERSED = _FM.format(body='''\
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return (field(xt, t) - (x0 - x1)).pow(2).sum(dim=1).mean()  # velocity from x1 to x0''')

FM_PATH_REVERSED = _FM.format(body='''\
    xt = t[:, None] * x0 + (1 - t[:, None]) * x1  # noise weighted by t
    return (field(xt, t) - (x1 - x0)).pow(2).sum(dim=1).mean()''')

FM_MSE = _FM.format(body='''\
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return torch.nn.functional.mse_loss(field(xt, t), x1 - x0)  # averages over the coordinates too''')

UNUSUAL_FM = _FM.format(body='''\
    xt = torch.lerp(x0, x1, t.unsqueeze(1))  # (1 - t) x0 + t x1
    residual = field(xt, t) - x1 + x0
    return torch.einsum("bi,bi->", residual, residual) / x1.shape[0]''')

# a second unusual-but-right student: other autograd entry points, another noise, a Butcher-tableau RK4, the
# log-likelihood in the reversed time s = 1 - t, the loss by F.mse_loss(reduction="sum")
UNUSUAL_DIVERGENCE_ONE_HOT = '''
def divergence(field, x, t):
    """sum_i e_i^T (dv/dx) e_i: one vector-Jacobian product per coordinate, the one-hot vector e_i as grad_outputs."""
    with torch.enable_grad():
        x = x if x.requires_grad else x.detach().clone().requires_grad_(True)
        v = field(x, t)
        total = 0
        for i in range(x.shape[1]):
            e = torch.zeros_like(v)
            e[:, i] = 1
            (g,) = torch.autograd.grad(v, x, grad_outputs=e, create_graph=True)
            total = total + g[:, i]
    return total
'''

NOISE_WHERE = _NOISE.format(
    expression="torch.where(torch.rand_like(x) < 0.5, torch.ones_like(x), -torch.ones_like(x))  # a fair coin")

UNUSUAL_HUTCHINSON_JVP = '''
def hutchinson_divergence(field, x, t, eps):
    """eps . (J eps): a forward-mode Jacobian-vector product instead of the vector-Jacobian product."""
    _, jv = torch.func.jvp(lambda y: field(y, t), (x,), (eps,))
    return (eps * jv).sum(dim=1)
'''

UNUSUAL_RK4 = _STEP.format(name="rk4_step", body='''\
    a = [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]]  # the Butcher tableau of classical RK4
    b, c = [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0.0, 0.5, 0.5, 1.0]
    ks = []
    for i in range(4):
        yi = y
        for j, aij in enumerate(a[i]):
            if aij:
                yi = yi + dt * aij * ks[j]
        ks.append(f(t + c[i] * dt, yi))
    return y + dt * sum(bi * k for bi, k in zip(b, ks))''')

UNUSUAL_AUGMENTED = _AUGMENTED.format(body='''\
    x, _ = state.split([state.shape[1] - 1, 1], dim=1)
    return torch.hstack([field(x, t), -divergence(field, x, t).unsqueeze(-1)])''')

UNUSUAL_LOG_PROB = _LOG_PROB.format(body='''\
    # in the reversed time s = 1 - t the data start at s = 0: d(x, l)/ds = -(v, -div v) at t = 1 - s
    end = odeint_fixed(lambda s, y: -augmented_dynamics(field, 1 - s, y), state, 0.0, 1.0, steps)
    z, d = end[:, :-1], x.shape[1]
    return -0.5 * z.pow(2).sum(dim=1) - 0.5 * d * math.log(2 * math.pi) - end[:, -1]''')

UNUSUAL_FM_MSE_SUM = _FM.format(body='''\
    xt = x0 + t.unsqueeze(-1) * (x1 - x0)
    return torch.nn.functional.mse_loss(field(xt, t), x1 - x0, reduction="sum") / x1.shape[0]''')

STUDENTS = [
    {
        "id": "l10-divergence-all-entries",
        "lesson": LESSON,
        "about": "the divergence as the sum of the gradient of v.sum(): every Jacobian entry, not the diagonal",
        "patches": {"divergence": DIVERGENCE_ALL_ENTRIES},
        # augmented_dynamics and cnf_log_prob pass a field to it: calls the judge cannot replay, charged too
        "expect_points": {"divergence": 0, "augmented_dynamics": 0, "cnf_log_prob": 0},
        "expect_message": "sum of all Jacobian entries",
    },
    {
        "id": "l10-hutchinson-nonzero-mean-noise",
        "lesson": LESSON,
        "about": "Hutchinson's noise from torch.randint(0, 2): entries 0 or 1, mean 1/2, a biased estimator",
        "patches": {"hutchinson_noise": NOISE_NONZERO_MEAN},
        "expect_points": {"hutchinson_noise": 0},
        "expect_message": "non-zero-mean noise",
    },
    {
        "id": "l10-hutchinson-uniform-noise",
        "lesson": LESSON,
        "about": "Hutchinson's noise uniform on [-1, 1]: mean 0 but variance 1/3",
        "patches": {"hutchinson_noise": NOISE_UNIFORM},
        "expect_points": {"hutchinson_noise": 0},
        "expect_message": "uniform noise on [−1, 1]",
    },
    {
        "id": "l10-rk4-time-not-advanced",
        "lesson": LESSON,
        "about": "RK4 stages evaluated at t: right for autonomous ODEs, wrong for a time-dependent field",
        "patches": {"rk4_step": RK4_FROZEN_TIME},
        # odeint_fixed and cnf_log_prob call it with dynamics the judge cannot replay: charged too (odeint_fixed
        # keeps its Euler case)
        "expect_points": {"rk4_step": 0, "odeint_fixed": 0.25, "cnf_log_prob": 0},
        "expect_message": "stages evaluated at time t",
    },
    {
        "id": "l10-odeint-always-forward",
        "lesson": LESSON,
        "about": "the step size |t1 - t0| / steps: integrating from t = 1 'back' to t = 0 runs forward to t = 2",
        "patches": {"odeint_fixed": ODEINT_ABS_STEP},
        "expect_points": {"odeint_fixed": 0.5, "cnf_log_prob": 0},
        "expect_message": "wrong time direction",
    },
    {
        "id": "l10-augmented-divergence-sign",
        "lesson": LESSON,
        "about": "the augmented dynamics integrate +div v: every log-likelihood has the divergence's sign flipped",
        "patches": {"augmented_dynamics": AUGMENTED_PLUS_DIVERGENCE},
        "expect_points": {"augmented_dynamics": 0, "cnf_log_prob": 0},
        "expect_message": ("divergence sign", "d log p/dt = −∇·v"),
    },
    {
        "id": "l10-log-prob-no-base",
        "lesson": LESSON,
        "about": "cnf_log_prob returns the integrated divergence only, without log p_0(z)",
        "patches": {"cnf_log_prob": LOG_PROB_NO_BASE},
        "expect_points": {"cnf_log_prob": 0},
        "expect_message": "forgetting log p₀ at the end",
    },
    {
        "id": "l10-log-prob-forward-in-time",
        "lesson": LESSON,
        "about": "cnf_log_prob integrates from t = 0 to t = 1, treating the data point as noise",
        "patches": {"cnf_log_prob": LOG_PROB_FORWARD},
        "expect_points": {"cnf_log_prob": 0},
        "expect_message": "wrong time direction (integrated from t = 0 to t = 1)",
    },
    {
        "id": "l10-fm-target-reversed",
        "lesson": LESSON,
        "about": "flow matching regresses on x0 - x1: the field carries data to noise",
        "patches": {"flow_matching_loss": FM_TARGET_REVERSED},
        "expect_points": {"flow_matching_loss": 0},
        "expect_message": "velocity target x₀ − x₁",
    },
    {
        "id": "l10-fm-mse-loss",
        "lesson": LESSON,
        "about": "F.mse_loss: the squared error averaged over the coordinates as well",
        "patches": {"flow_matching_loss": FM_MSE},
        "expect_points": {"flow_matching_loss": 0},
        "expect_message": "mean over the coordinates too",
    },
    {
        "id": "l10-unusual-but-right",
        "lesson": LESSON,
        "about": "correct code in unusual ways (torch.func Jacobians, Gaussian noise, a linspace grid, lerp and einsum) "
                 "and quiz answers lower-case or as expressions: full marks",
        "patches": {"divergence": UNUSUAL_DIVERGENCE, "hutchinson_noise": NOISE_GAUSSIAN,
                    "odeint_fixed": UNUSUAL_ODEINT, "flow_matching_loss": UNUSUAL_FM,
                    "answer_direction": 'answer_direction = " c "\n',
                    "answer_linear": "answer_linear = -torch.tensor([[0.5, 2.0], [-1.0, -1.5]]).trace().item()\n"},
        "expect_points": {},
    },
    {
        "id": "l10-unusual-but-right-2",
        "lesson": LESSON,
        "about": "correct code in other unusual ways (one-hot grad_outputs, torch.where noise, a forward-mode JVP, "
                 "a Butcher tableau, the log-likelihood in reversed time with a hand-written Gaussian, "
                 "F.mse_loss(reduction='sum')) and a quiz letter in parentheses: full marks",
        "patches": {"divergence": UNUSUAL_DIVERGENCE_ONE_HOT, "hutchinson_noise": NOISE_WHERE,
                    "hutchinson_divergence": UNUSUAL_HUTCHINSON_JVP, "rk4_step": UNUSUAL_RK4,
                    "augmented_dynamics": UNUSUAL_AUGMENTED, "cnf_log_prob": UNUSUAL_LOG_PROB,
                    "flow_matching_loss": UNUSUAL_FM_MSE_SUM,
                    "answer_direction": 'answer_direction = "(C)"\n'},
        "expect_points": {},
    },
    {
        "id": "l10-quiz-sign",
        "lesson": LESSON,
        "about": "the linear field's log-density change given as +tr A",
        "patches": {"answer_linear": "answer_linear = 0.5 - 1.5\n"},
        "expect_points": {"quiz_10_linear": 0},
        "expect_message": "divergence sign",
    },
]

# --- every hint proven: one mistaken answer cell per named mistake (tests/test_hints_proven.py) ----------------

MISTAKEN = {
    "divergence": {
        "sum of all Jacobian entries (gradient of v.sum())": DIVERGENCE_ALL_ENTRIES,
    },
    "hutchinson_divergence": {
        "vector–Jacobian product with ones instead of ε": _HUTCHINSON.format(body='''\
        (grad,) = torch.autograd.grad(v.sum(), x, create_graph=True)  # 1^T J
    return (grad * eps).sum(dim=1)'''),
        "εᵀv instead of εᵀ(∂v/∂x)ε": _HUTCHINSON.format(body='''\
    return (eps * v).sum(dim=1)  # eps . v'''),
        "εᵀJ summed (the dot product with ε left out)": _HUTCHINSON.format(body='''\
        (vjp,) = torch.autograd.grad(v, x, grad_outputs=eps, create_graph=True)  # eps^T J
    return vjp.sum(dim=1)'''),
        "the exact divergence (noise ignored)": '''
def hutchinson_divergence(field, x, t, eps):
    """Hutchinson's estimate eps^T (dv/dx) eps, per sample."""
    return divergence(field, x, t)  # the exact one is better anyway
''',
    },
    "hutchinson_noise": {
        "non-zero-mean noise": NOISE_NONZERO_MEAN,
        "uniform noise on [−1, 1]": NOISE_UNIFORM,
        "one sign per sample shared by all coordinates": _NOISE.format(
            expression="(torch.randint(0, 2, (x.shape[0], 1), dtype=x.dtype) * 2 - 1).expand_as(x)  # one per row"),
        "noise not in x's dtype": _NOISE.format(expression="torch.randint(0, 2, x.shape) * 2 - 1"),
        "noise not of x's shape": _NOISE.format(
            expression="torch.randint(0, 2, (x.shape[1],), dtype=x.dtype) * 2 - 1  # one noise vector"),
    },
    "euler_step": {
        "dt missing": _STEP.format(name="euler_step", body="    return y + f(t, y)"),
        "slope taken at the end of the step (t + dt)": _STEP.format(name="euler_step",
                                                                     body="    return y + dt * f(t + dt, y)"),
    },
    "rk4_step": {
        "Euler step instead of RK4": _STEP.format(name="rk4_step", body="    return y + dt * f(t, y)"),
        "stages evaluated at time t (time not advanced)": RK4_FROZEN_TIME,
        "equal weights (k₁ + k₂ + k₃ + k₄)/4": RK4_EQUAL_WEIGHTS,
        "dt missing in the update": _STEP.format(name="rk4_step", body='''\
    k1 = f(t, y)
    k2 = f(t + dt / 2, y + dt / 2 * k1)
    k3 = f(t + dt / 2, y + dt / 2 * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + (k1 + 2 * k2 + 2 * k3 + k4) / 6  # the weighted slope'''),
    },
    "odeint_fixed": {
        "wrong time direction (|dt|: always forwards)": ODEINT_ABS_STEP,
        "time not advanced (every step at t0)": _ODEINT.format(body='''\
    h = (t1 - t0) / steps
    y = y0
    for _ in range(steps):
        y = step(f, t0, y, h)  # always the start time
    return y'''),
        "method ignored (always RK4)": '''
def odeint_fixed(f, y0, t0, t1, steps, method="rk4"):
    """y(t1) for dy/dt = f(t, y), y(t0) = y0, in `steps` equal steps."""
    h = (t1 - t0) / steps
    y = y0
    for k in range(steps):
        y = rk4_step(f, t0 + k * h, y, h)  # RK4 is better anyway
    return y
''',
        "one step too many": _ODEINT.format(body='''\
    h = (t1 - t0) / steps
    y = y0
    for k in range(steps + 1):  # steps + 1 grid points
        y = step(f, t0 + k * h, y, h)
    return y'''),
        "one step too few": _ODEINT.format(body='''\
    h = (t1 - t0) / steps
    y = y0
    for k in range(1, steps):  # k = 1 .. steps - 1
        y = step(f, t0 + (k - 1) * h, y, h)
    return y'''),
    },
    "augmented_dynamics": {
        "divergence sign": AUGMENTED_PLUS_DIVERGENCE,
    },
    "cnf_log_prob": {
        "divergence sign": LOG_PROB_SIGN,
        "forgetting log p₀ at the end": LOG_PROB_NO_BASE,
        "wrong time direction (integrated from t = 0 to t = 1)": LOG_PROB_FORWARD,
        "log p₀ evaluated at x instead of at z": LOG_PROB_BASE_AT_X,
        "Euler steps instead of RK4": _LOG_PROB.format(body='''\
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 1.0, 0.0, steps, method="euler")
    return StandardNormal(x.shape[1]).log_prob(end[:, :-1]) - end[:, -1]'''),
    },
    "flow_matching_loss": {
        "velocity target x₀ − x₁": FM_TARGET_REVERSED,
        "path reversed: x_t = t·x₀ + (1 − t)·x₁": FM_PATH_REVERSED,
        "mean over the coordinates too (F.mse_loss)": FM_MSE,
        "field evaluated at the data x₁ instead of x_t": _FM.format(body='''\
    return (field(x1, t) - (x1 - x0)).pow(2).sum(dim=1).mean()  # the field at the data point'''),
        "target x₁ instead of x₁ − x₀": _FM.format(body='''\
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return (field(xt, t) - x1).pow(2).sum(dim=1).mean()  # the field should point at the data'''),
        "summed over the batch": _FM.format(body='''\
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return ((field(xt, t) - (x1 - x0)) ** 2).sum()  # the total squared error'''),
        "norm not squared": _FM.format(body='''\
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return torch.linalg.vector_norm(field(xt, t) - (x1 - x0), dim=1).mean()'''),
    },
    "quiz_10_direction": {
        "wrong time direction": 'answer_direction = "A"\n',
    },
    "quiz_10_linear": {
        "divergence sign": "answer_linear = 0.5 - 1.5\n",
    },
    "quiz_10_probability_flow": {
        "the ODE taken for a sample path of the SDE": 'answer_probability_flow = "D"\n',
    },
}
