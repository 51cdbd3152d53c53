"""Sample-class students for lesson 04 (Glow): one per classic mistake.

Each student is the full solution with one solution cell replaced; every test cell not listed in
``expect_points`` is expected at full points. Partial credit is points × passed cases / cases.
"""

CONV1X1_MISSING_HW = '''
def conv1x1_logdet(W, h, w):
    """log|det| of the 1x1 convolution x[:, :, i, j] = W z[:, :, i, j] on an h x w image."""
    return torch.linalg.slogdet(W).logabsdet  # counted once, not at every pixel
'''

LU_MISSING_HW = '''
def lu_logdet(log_abs_diag_u, h, w):
    """log|det| of the 1x1 convolution with W = P L U on an h x w image, base -> data."""
    return log_abs_diag_u.sum()  # counted once, not at every pixel
'''

PRACTICE_4_SIGN_NOT_FLIPPED = '''
# practice problem 4: diag U = (2, 0.5, 0.8), 3 channels, 32 x 32 pixels — as numbers
practice_4_logdet_forward = float(lu_logdet(torch.log(torch.tensor([2.0, 0.5, 0.8])), 32, 32))
practice_4_logdet_inverse = practice_4_logdet_forward  # same number both ways: the direction ignored
'''

_LU_HEAD = '''
class LUInvertible1x1Conv(nn.Module):
    """Invertible 1x1 convolution with W = P L U, base -> data."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        q, r = torch.linalg.qr(torch.randn(channels, channels))
        rotation = q * torch.sign(torch.diagonal(r))
        P, L, U = torch.linalg.lu(rotation)
        s = torch.diagonal(U)
        self.register_buffer("P", P)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(L, -1))
        self.upper = nn.Parameter(torch.triu(U, 1))
        self.log_abs_s = nn.Parameter(torch.log(torch.abs(s)))

    def factors(self):
        eye = torch.eye(self.channels, dtype=self.lower.dtype)
        L = torch.tril(self.lower, -1) + eye
        U = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_abs_s))
        return self.P, L, U

    def weight(self):
        P, L, U = self.factors()
        return P @ L @ U
'''

LU_DENSE_SLOGDET = _LU_HEAD + '''
    def forward(self, z):
        W = self.weight()
        logdet = z.shape[2] * z.shape[3] * torch.linalg.slogdet(W).logabsdet  # dense: O(C^3)
        return torch.einsum("ij,bjhw->bihw", W, z), logdet.expand(z.shape[0])

    def inverse(self, x):
        W = self.weight()
        logdet = -x.shape[2] * x.shape[3] * torch.linalg.slogdet(W).logabsdet
        return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(W), x), logdet.expand(x.shape[0])
'''

LU_FORWARD_APPLIES_INVERSE = _LU_HEAD + '''
    def forward(self, z):  # applies W^-1, as normflows' Invertible1x1Conv.forward does
        logdet = -lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.weight()), z), logdet.expand(z.shape[0])

    def inverse(self, x):
        logdet = lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        return torch.einsum("ij,bjhw->bihw", self.weight(), x), logdet.expand(x.shape[0])
'''

ACTNORM_ATTRIBUTE_FLAG = '''
class ActNorm(nn.Module):
    """Per-channel affine flow, base -> data: x = z * exp(log_scale) + bias."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.initialized = False  # a plain attribute: not saved in state_dict

    def forward(self, z):
        x = z * torch.exp(self.log_scale).reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return x, (z.shape[2] * z.shape[3] * self.log_scale.sum()).expand(z.shape[0])

    def inverse(self, x):
        if not self.initialized:
            with torch.no_grad():
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
            self.initialized = True
        z = (x - self.bias.reshape(1, -1, 1, 1)) * torch.exp(-self.log_scale).reshape(1, -1, 1, 1)
        return z, (-x.shape[2] * x.shape[3] * self.log_scale.sum()).expand(x.shape[0])
'''

SQUEEZE_LAYER_UNSQUEEZES = '''
class Squeeze(nn.Module):
    """forward un-squeezes (the paper's data -> latent reading): the name lies about the direction."""

    def forward(self, z):
        return unsqueeze(z), z.new_zeros(z.shape[0])

    def inverse(self, x):
        return squeeze(x), x.new_zeros(x.shape[0])
'''

SQUEEZE_PLAIN_RESHAPE = '''
def squeeze(x):
    """Space-to-depth, written as a plain reshape (regroups rows, not 2x2 blocks)."""
    b, c, h, w = x.shape
    return x.reshape(b, 4 * c, h // 2, w // 2)
'''

BPD_IN_NATS = '''
answer_bpd = (-85.0 + 64 * math.log(17)) / 64  # nats per dimension
'''

BPD_PER_IMAGE = '''
answer_bpd = (-85.0 + 64 * math.log(17)) / math.log(2)  # bits per image
'''

ACTNORM_NORMALISES_UNDER_NO_GRAD = '''
class ActNorm(nn.Module):
    """Per-channel affine flow, base -> data: x = z * exp(log_scale) + bias."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, z):
        x = z * torch.exp(self.log_scale).reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return x, (z.shape[2] * z.shape[3] * self.log_scale.sum()).expand(z.shape[0])

    def inverse(self, x):
        with torch.no_grad():
            if not bool(self.initialized):
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
                self.initialized.fill_(True)
            z = (x - self.bias.reshape(1, -1, 1, 1)) * torch.exp(-self.log_scale).reshape(1, -1, 1, 1)  # one indent too deep
        return z, (-x.shape[2] * x.shape[3] * self.log_scale.sum()).expand(x.shape[0])
'''

ACTNORM_PLAIN_TENSORS = '''
class ActNorm(nn.Module):
    """Per-channel affine flow, base -> data: x = z * exp(log_scale) + bias."""

    def __init__(self, channels):
        super().__init__()
        self.bias = torch.zeros(channels, requires_grad=True)  # plain tensors: not in self.parameters()
        self.log_scale = torch.zeros(channels, requires_grad=True)
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, z):
        x = z * torch.exp(self.log_scale).reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return x, (z.shape[2] * z.shape[3] * self.log_scale.sum()).expand(z.shape[0])

    def inverse(self, x):
        if not bool(self.initialized):
            with torch.no_grad():
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
                self.initialized.fill_(True)
        z = (x - self.bias.reshape(1, -1, 1, 1)) * torch.exp(-self.log_scale).reshape(1, -1, 1, 1)
        return z, (-x.shape[2] * x.shape[3] * self.log_scale.sum()).expand(x.shape[0])
'''

ACTNORM_IN_PLACE = '''
class ActNorm(nn.Module):
    """Per-channel affine flow, base -> data: x = z * exp(log_scale) + bias."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, z):
        x = z * torch.exp(self.log_scale).reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return x, (z.shape[2] * z.shape[3] * self.log_scale.sum()).expand(z.shape[0])

    def inverse(self, x):
        if not bool(self.initialized):
            with torch.no_grad():
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
                self.initialized.fill_(True)
        logdet = (-x.shape[2] * x.shape[3] * self.log_scale.sum()).expand(x.shape[0])
        x -= self.bias.reshape(1, -1, 1, 1)  # in place: edits the caller's batch
        x *= torch.exp(-self.log_scale).reshape(1, -1, 1, 1)
        return x, logdet
'''

LU_INVERSE_UNDER_NO_GRAD = _LU_HEAD + '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        logdet = lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return x, logdet.expand(z.shape[0])

    def inverse(self, x):
        with torch.no_grad():  # "only the values of W^-1 are needed"
            W_inv = torch.linalg.inv(self.weight())
        z = torch.einsum("ij,bjhw->bihw", W_inv, x)
        logdet = -lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        return z, logdet.expand(x.shape[0])
'''

LU_LOGDET_ITEM = _LU_HEAD + '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        return x, torch.full((z.shape[0],), lu_logdet(self.log_abs_s, z.shape[2], z.shape[3]).item())

    def inverse(self, x):
        z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.weight()), x)
        return z, torch.full((x.shape[0],), -lu_logdet(self.log_abs_s, x.shape[2], x.shape[3]).item())
'''

UNUSUAL_ACTNORM_INIT = '''
def actnorm_init(x):
    """Per-channel (bias, log_scale) from torch.var_mean: log σ = ½ log σ²."""
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    return mean, 0.5 * torch.log(var.clamp_min(1e-12))
'''

UNUSUAL_SQUEEZE = '''
def squeeze(x):
    """Space-to-depth is torch's pixel_unshuffle: channel 4c + 2i + j holds pixel (2h + i, 2w + j) of channel c."""
    return torch.nn.functional.pixel_unshuffle(x, 2)
'''

UNUSUAL_UNSQUEEZE = '''
def unsqueeze(x):
    return torch.nn.functional.pixel_shuffle(x, 2)
'''

UNUSUAL_LU = _LU_HEAD + '''
    def forward(self, z):
        x = torch.nn.functional.conv2d(z, self.weight()[:, :, None, None])  # a real 1x1 convolution
        return x, lu_logdet(self.log_abs_s, *z.shape[2:]).repeat(z.shape[0])

    def inverse(self, x):
        z = torch.nn.functional.conv2d(x, torch.linalg.inv(self.weight())[:, :, None, None])
        return z, -lu_logdet(self.log_abs_s, *x.shape[2:]).repeat(x.shape[0])
'''

STUDENTS = [
    {"id": "l04-conv1x1-missing-hw", "lesson": "04-glow", "patches": {"conv1x1_logdet": CONV1X1_MISSING_HW},
     "expect_points": {"conv1x1_logdet": 0},
     "expect_message": "missing h·w factor"},
    {"id": "l04-lu-missing-hw", "lesson": "04-glow", "patches": {"lu_logdet": LU_MISSING_HW},
     # the 1x1-pixel case of lu_logdet passes (h·w = 1); the layer is right given it (charged once: its log-det is
     # the helper's answer spread over the batch); practice 4 is a number the student computes, graded as a number
     "expect_points": {"lu_logdet": 0.25, "practice_4_logdet_forward": 0,
                       "practice_4_logdet_inverse": 0},
     "expect_message": "missing h·w factor"},
    {"id": "l04-practice-4-sign-not-flipped", "lesson": "04-glow",
     "patches": {"practice_4_logdet_forward": PRACTICE_4_SIGN_NOT_FLIPPED},
     "expect_points": {"practice_4_logdet_inverse": 0},
     "expect_message": "the sign is flipped"},
    {"id": "l04-lu-dense-slogdet", "lesson": "04-glow", "patches": {"LUInvertible1x1Conv": LU_DENSE_SLOGDET},
     "expect_points": {"LUInvertible1x1Conv": 0},
     "expect_message": "dense slogdet for W"},
    {"id": "l04-lu-forward-applies-inverse", "lesson": "04-glow", "patches": {"LUInvertible1x1Conv": LU_FORWARD_APPLIES_INVERSE},
     "expect_points": {"LUInvertible1x1Conv": 0},
     "expect_message": "forward applies W⁻¹ (direction swapped)"},
    {"id": "l04-actnorm-reinit-after-load", "lesson": "04-glow", "patches": {"ActNorm": ACTNORM_ATTRIBUTE_FLAG},
     "expect_points": {"ActNorm": 0},
     "expect_message": "ActNorm re-initialised after load_state_dict"},
    {"id": "l04-squeeze-named-wrongly", "lesson": "04-glow", "patches": {"Squeeze": SQUEEZE_LAYER_UNSQUEEZES},
     "expect_points": {"Squeeze": 0},
     "expect_message": "Squeeze.forward un-squeezes (direction named wrongly)"},
    {"id": "l04-squeeze-plain-reshape", "lesson": "04-glow", "patches": {"squeeze": SQUEEZE_PLAIN_RESHAPE},
     # on a 2x2 image a plain reshape happens to be squeeze (1 of 4 cases). The Squeeze layer is right given its
     # wrong helper: a mistake is charged once, in squeeze, and the layer's feedback names the helper
     "expect_points": {"squeeze": 0.5},
     "expect_message": ("plain reshape instead of 2×2 blocks", "comes from your `squeeze`")},
    {"id": "l04-actnorm-normalises-under-no-grad", "lesson": "04-glow",
     "patches": {"ActNorm": ACTNORM_NORMALISES_UNDER_NO_GRAD},
     # right values everywhere; but bias and log_scale never receive a gradient from z, so they never train
     "expect_points": {"ActNorm_trains": 0},
     "expect_message": "normalisation inside torch.no_grad()"},
    {"id": "l04-actnorm-plain-tensors", "lesson": "04-glow", "patches": {"ActNorm": ACTNORM_PLAIN_TENSORS},
     # not in parameters() nor in state_dict: never trained, and a reloaded layer loses them
     "expect_points": {"ActNorm_trains": 0, "ActNorm": 0},
     "expect_message": "bias and log_scale not registered as parameters"},
    {"id": "l04-actnorm-in-place", "lesson": "04-glow", "patches": {"ActNorm": ACTNORM_IN_PLACE},
     "expect_points": {"ActNorm": 0, "ActNorm_trains": 0},
     "expect_message": ("changed its input", "in-place edit of an input")},
    {"id": "l04-lu-inverse-under-no-grad", "lesson": "04-glow", "patches": {"LUInvertible1x1Conv": LU_INVERSE_UNDER_NO_GRAD},
     "expect_points": {"LUInvertible1x1Conv_trains": 0},
     "expect_message": "W⁻¹ computed outside autograd"},
    {"id": "l04-lu-logdet-item", "lesson": "04-glow", "patches": {"LUInvertible1x1Conv": LU_LOGDET_ITEM},
     "expect_points": {"LUInvertible1x1Conv_trains": 0},
     "expect_message": "log-det detached from log_abs_s"},
    {"id": "l04-unusual-but-right", "lesson": "04-glow",
     # correct code written differently (var_mean, pixel_(un)shuffle, conv2d, a dense inverse), quiz answers as
     # expressions and under the names the cells state: full marks
     "patches": {"actnorm_init": UNUSUAL_ACTNORM_INIT, "squeeze": UNUSUAL_SQUEEZE, "unsqueeze": UNUSUAL_UNSQUEEZE,
                 "LUInvertible1x1Conv": UNUSUAL_LU,
                 "answer_bpd": "# Q2: set answer_bpd to a number (bits per dimension)\n"
                               "answer_bpd = math.log2(17) - 85 / (64 * math.log(2))\n",
                 "answer_nats_per_image": "answer_nats_per_image = 2.18 * 64 / math.log2(math.e)\n",
                 "answer_squeeze_name": "answer_squeeze_name = 'B'  # an unsqueeze whose name lies\n",
                 "answer_level_dims": "answer_level_dims = 4 * 2 * 2  # 4 channels of 2x2 after the last squeeze\n"}},
    {"id": "l04-bpd-in-nats", "lesson": "04-glow", "patches": {"answer_bpd": BPD_IN_NATS},
     "expect_points": {"quiz_04_bits_per_dim": 0},
     "expect_message": "nats per dimension, not bits"},
    {"id": "l04-bpd-per-image", "lesson": "04-glow", "patches": {"answer_bpd": BPD_PER_IMAGE},
     "expect_points": {"quiz_04_bits_per_dim": 0},
     "expect_message": "bits per image, not per dimension"},
]


# ------------------------------------------------------------------ every named mistake, proven (MISTAKEN)

def _actnorm_init_with(body):
    return f'''
def actnorm_init(x):
    """Per-channel (bias, log_scale), each (C,): the mean and log standard deviation over batch and pixels."""
{body}'''


def _actnorm_with(init_flag, inverse_init, logdet):
    return f'''
class ActNorm(nn.Module):
    """Per-channel affine flow, base -> data: x = z * exp(log_scale) + bias (the same at every pixel)."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
{init_flag}
    def forward(self, z):
        x = z * torch.exp(self.log_scale).reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        logdet = {logdet.format(v="z")}
        return x, logdet.expand(z.shape[0])

    def inverse(self, x):
{inverse_init}
        z = (x - self.bias.reshape(1, -1, 1, 1)) * torch.exp(-self.log_scale).reshape(1, -1, 1, 1)
        logdet = -{logdet.format(v="x")}
        return z, logdet.expand(x.shape[0])
'''


_FLAG_BUFFER = '''        self.register_buffer("initialized", torch.tensor(False))
'''

_INIT_ONCE = '''        if not bool(self.initialized):
            with torch.no_grad():
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
                self.initialized.fill_(True)'''

_HW_LOGDET = "{v}.shape[2] * {v}.shape[3] * self.log_scale.sum()"

_PRACTICE_4 = '''
# practice problem 4: diag U = (2, 0.5, 0.8), 3 channels, 32 x 32 pixels — as numbers
practice_4_logdet_forward = {forward}
practice_4_logdet_inverse = -practice_4_logdet_forward
'''

_LOG_DET_W = "(math.log(2.0) + math.log(0.5) + math.log(0.8))"

_LU_FORWARD_INVERSE = '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        logdet = lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return x, logdet.expand(z.shape[0])

    def inverse(self, x):
        P, L, U = self.factors()
        L_inv_Pt = torch.linalg.solve_triangular(L, P.T, upper=False, unitriangular=True)
        W_inv = torch.linalg.solve_triangular(U, L_inv_Pt, upper=True)
        z = torch.einsum("ij,bjhw->bihw", W_inv, x)
        logdet = -lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        return z, logdet.expand(x.shape[0])
'''


def _lu_with_factors(L, U):
    return _LU_HEAD.split("    def factors(self):")[0] + f'''    def factors(self):
        eye = torch.eye(self.channels, dtype=self.lower.dtype)
        L = {L}
        U = {U}
        return self.P, L, U

    def weight(self):
        P, L, U = self.factors()
        return P @ L @ U
'''


_L_RIGHT = "torch.tril(self.lower, -1) + eye"
_U_RIGHT = "torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_abs_s))"


def _squeeze_with(shape, axes, comment):
    return f'''
def squeeze(x):
    """Space-to-depth: (batch, C, H, W) -> (batch, 4C, H/2, W/2)."""
    b, c, h, w = x.shape
    blocks = x.reshape({shape}).permute({axes})  # {comment}
    return blocks.reshape(b, 4 * c, h // 2, w // 2)
'''


def _unsqueeze_with(shape, axes, comment):
    return f'''
def unsqueeze(x):
    """Depth-to-space, the inverse of squeeze: (batch, 4C, H, W) -> (batch, C, 2H, 2W)."""
    b, c4, h, w = x.shape
    blocks = x.reshape({shape}).permute({axes})  # {comment}
    return blocks.reshape(b, c4 // 4, 2 * h, 2 * w)
'''


def _factor_out_with(sizes, forward, inverse):
    return f'''
class FactorOut(nn.Module):
    """Multi-scale split, base -> data: channels // 2 channels pass unchanged, inner acts on the rest."""

    def __init__(self, inner, channels):
        super().__init__()
        self.inner = inner
        self.sizes = {sizes}

    def forward(self, z):
{forward}
    def inverse(self, x):
{inverse}'''


_FO_FORWARD = '''        z_out, z_rest = z.split(self.sizes, dim=1)
        x_rest, logdet = self.inner(z_rest)
        return torch.cat([z_out, x_rest], dim=1), logdet
'''
_FO_INVERSE = '''        x_out, x_rest = x.split(self.sizes, dim=1)
        z_rest, logdet = self.inner.inverse(x_rest)
        return torch.cat([x_out, z_rest], dim=1), logdet
'''

MISTAKEN = {
    "actnorm_init": {
        "Bessel-corrected standard deviation": _actnorm_init_with('''    dims = (0, 2, 3)
    bias = x.mean(dims)
    std = x.std(dims).clamp_min(1e-6)  # torch's default: unbiased, divides by N - 1
    return bias, torch.log(std)
'''),
        "statistics per pixel instead of per channel": _actnorm_init_with('''    bias = x.mean(0)  # over the batch only: one value per channel AND pixel
    std = x.std(0, unbiased=False).clamp_min(1e-6)
    return bias, torch.log(std)
'''),
        "scale instead of log-scale": _actnorm_init_with('''    dims = (0, 2, 3)
    bias = x.mean(dims)
    std = x.std(dims, unbiased=False).clamp_min(1e-6)
    return bias, std
'''),
        "log-variance instead of log-standard-deviation": _actnorm_init_with('''    dims = (0, 2, 3)
    bias = x.mean(dims)
    return bias, torch.log(x.var(dims, unbiased=False))
'''),
        "no floor for a channel without spread": _actnorm_init_with('''    dims = (0, 2, 3)
    bias = x.mean(dims)
    std = x.std(dims, unbiased=False)
    return bias, torch.log(std)
'''),
    },
    "ActNorm": {
        "ActNorm re-initialised after load_state_dict": ACTNORM_ATTRIBUTE_FLAG,
        "ActNorm initialised on every call": _actnorm_with(
            _FLAG_BUFFER, _INIT_ONCE.replace("        if not bool(self.initialized):\n",
                                             "        if not bool(self.initialized):  # checked, never set\n")
            .replace("\n                self.initialized.fill_(True)", ""), _HW_LOGDET),
        "missing h·w factor": _actnorm_with(_FLAG_BUFFER, _INIT_ONCE, "self.log_scale.sum()"),
    },
    "ActNorm_trains": {
        "normalisation inside torch.no_grad()": ACTNORM_NORMALISES_UNDER_NO_GRAD,
        "log-det detached from log_scale": _actnorm_with(
            _FLAG_BUFFER, _INIT_ONCE, "torch.tensor({v}.shape[2] * {v}.shape[3] * self.log_scale.sum().item())"),
        "bias and log_scale not registered as parameters": ACTNORM_PLAIN_TENSORS,
    },
    "conv1x1_logdet": {
        "missing h·w factor": CONV1X1_MISSING_HW,
        "log of det without abs": '''
def conv1x1_logdet(W, h, w):
    """log|det| of the 1x1 convolution x[:, :, i, j] = W z[:, :, i, j] on an h x w image: h*w*log|det W|."""
    return h * w * torch.log(torch.linalg.det(W))
''',
        "counted once per channel as well (h·w·C)": '''
def conv1x1_logdet(W, h, w):
    """log|det| of the 1x1 convolution x[:, :, i, j] = W z[:, :, i, j] on an h x w image: h*w*log|det W|."""
    C = W.shape[0]
    return C * h * w * torch.linalg.slogdet(W).logabsdet  # every channel at every pixel
''',
    },
    "lu_logdet": {
        "missing h·w factor": LU_MISSING_HW,
        "mean instead of sum over the diagonal": '''
def lu_logdet(log_abs_diag_u, h, w):
    """log|det| of the 1x1 convolution with W = P L U on an h x w image, base -> data."""
    return h * w * log_abs_diag_u.mean()
''',
        "log taken twice": '''
def lu_logdet(log_abs_diag_u, h, w):
    """log|det| of the 1x1 convolution with W = P L U on an h x w image, base -> data."""
    return h * w * torch.log(torch.abs(log_abs_diag_u)).sum()  # log|U_ii|
''',
    },
    "practice_4_logdet_forward": {
        "missing h·w factor": _PRACTICE_4.format(forward=_LOG_DET_W),
        "h instead of h·w": _PRACTICE_4.format(forward=f"32 * {_LOG_DET_W}"),
        "counted once per channel as well (h·w·C)": _PRACTICE_4.format(forward=f"3 * 32 * 32 * {_LOG_DET_W}"),
    },
    "LUInvertible1x1Conv": {
        "dense slogdet for W": LU_DENSE_SLOGDET,
        "missing h·w factor": _LU_HEAD + '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        return x, self.log_abs_s.sum().expand(z.shape[0])  # log|det W|, once

    def inverse(self, x):
        P, L, U = self.factors()
        L_inv_Pt = torch.linalg.solve_triangular(L, P.T, upper=False, unitriangular=True)
        W_inv = torch.linalg.solve_triangular(U, L_inv_Pt, upper=True)
        return torch.einsum("ij,bjhw->bihw", W_inv, x), -self.log_abs_s.sum().expand(x.shape[0])
''',
        "forward applies W⁻¹ (direction swapped)": LU_FORWARD_APPLIES_INVERSE,
        "inverse applies Wᵀ": _LU_HEAD + '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        logdet = lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return x, logdet.expand(z.shape[0])

    def inverse(self, x):
        z = torch.einsum("ij,bjhw->bihw", self.weight().T, x)  # a rotation's inverse is its transpose
        logdet = -lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        return z, logdet.expand(x.shape[0])
''',
        "L's diagonal not fixed at 1": _lu_with_factors("torch.tril(self.lower) + eye", _U_RIGHT) + '''
    def forward(self, z):
        x = torch.einsum("ij,bjhw->bihw", self.weight(), z)
        logdet = lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return x, logdet.expand(z.shape[0])

    def inverse(self, x):
        z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.weight()), x)
        logdet = -lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        return z, logdet.expand(x.shape[0])
''',
        "U's diagonal taken from `upper`": _lu_with_factors(
            _L_RIGHT, "torch.triu(self.upper) + torch.diag(self.sign_s * torch.exp(self.log_abs_s))")
        + _LU_FORWARD_INVERSE,
        "sign of U_ii ignored": _lu_with_factors(
            _L_RIGHT, "torch.triu(self.upper, 1) + torch.diag(torch.exp(self.log_abs_s))") + _LU_FORWARD_INVERSE,
    },
    "LUInvertible1x1Conv_trains": {
        "W⁻¹ computed outside autograd": LU_INVERSE_UNDER_NO_GRAD,
        "log-det detached from log_abs_s": LU_LOGDET_ITEM,
    },
    "squeeze": {
        "plain reshape instead of 2×2 blocks": SQUEEZE_PLAIN_RESHAPE,
        "column offset before row offset (4c + 2j + i)": _squeeze_with(
            "b, c, h // 2, 2, w // 2, 2", "0, 1, 5, 3, 2, 4", "(b, c, j, i, h', w')"),
        "block position before channel ((2i + j)·C + c)": _squeeze_with(
            "b, c, h // 2, 2, w // 2, 2", "0, 3, 5, 1, 2, 4", "(b, i, j, c, h', w')"),
    },
    "unsqueeze": {
        "plain reshape instead of 2×2 blocks": '''
def unsqueeze(x):
    """Depth-to-space, the inverse of squeeze: (batch, 4C, H, W) -> (batch, C, 2H, 2W)."""
    b, c4, h, w = x.shape
    return x.reshape(b, c4 // 4, 2 * h, 2 * w)
''',
        "column offset before row offset (4c + 2j + i)": _unsqueeze_with(
            "b, c4 // 4, 2, 2, h, w", "0, 1, 4, 3, 5, 2", "(b, c, j, i, h, w) -> (b, c, h, i, w, j)"),
        "block position before channel ((2i + j)·C + c)": _unsqueeze_with(
            "b, 2, 2, c4 // 4, h, w", "0, 3, 4, 1, 5, 2", "(b, i, j, c, h, w) -> (b, c, h, i, w, j)"),
    },
    "Squeeze": {
        "Squeeze.forward un-squeezes (direction named wrongly)": SQUEEZE_LAYER_UNSQUEEZES,
    },
    "FactorOut": {
        "the second half factored out": _factor_out_with("[channels - channels // 2, channels // 2]", '''\
        z_rest, z_out = z.split(self.sizes, dim=1)  # the last channels // 2 leave
        x_rest, logdet = self.inner(z_rest)
        return torch.cat([x_rest, z_out], dim=1), logdet
''', '''\
        x_rest, x_out = x.split(self.sizes, dim=1)
        z_rest, logdet = self.inner.inverse(x_rest)
        return torch.cat([z_rest, x_out], dim=1), logdet
'''),
        "inner's forward used in the inverse": _factor_out_with("[channels // 2, channels - channels // 2]",
                                                                _FO_FORWARD, '''\
        x_out, x_rest = x.split(self.sizes, dim=1)
        z_rest, logdet = self.inner(x_rest)
        return torch.cat([x_out, z_rest], dim=1), logdet
'''),
        "inner's log-det dropped": _factor_out_with("[channels // 2, channels - channels // 2]", '''\
        z_out, z_rest = z.split(self.sizes, dim=1)
        x_rest, _ = self.inner(z_rest)
        return torch.cat([z_out, x_rest], dim=1), z.new_zeros(z.shape[0])  # a split is volume-preserving
''', '''\
        x_out, x_rest = x.split(self.sizes, dim=1)
        z_rest, _ = self.inner.inverse(x_rest)
        return torch.cat([x_out, z_rest], dim=1), x.new_zeros(x.shape[0])
'''),
    },
    "quiz_04_bits_per_dim": {
        "nats per dimension, not bits": BPD_IN_NATS,
        "bits per image, not per dimension": BPD_PER_IMAGE,
        "dequantisation term missing": '''
answer_bpd = -85.0 / (64 * math.log(2))  # -log p in bits, per dimension
''',
        "256 levels instead of 17": '''
answer_bpd = (-85.0 + 64 * math.log(256)) / (64 * math.log(2))  # 8-bit pixels
''',
        "log-density not negated": '''
answer_bpd = (85.0 + 64 * math.log(17)) / (64 * math.log(2))
''',
    },
    "quiz_04_nats_per_image": {
        "bits per image, not nats": '''
answer_nats_per_image = 2.18 * 64
''',
        "nats per dimension, not per image": '''
answer_nats_per_image = 2.18 * math.log(2)
''',
        "the dequantised density's −log p(y)": '''
answer_nats_per_image = 2.18 * 64 * math.log(2) - 64 * math.log(17)  # undo the 64·log 17 of the bpd formula
''',
    },
    "quiz_04_level_dims": {
        "channels instead of coordinates": '''
answer_level_dims = 4  # level 3 works on 4 channels
''',
        "halved once too often": '''
answer_level_dims = 8  # 64 -> 32 -> 16 -> 8
''',
        "level 2's count": '''
answer_level_dims = 32
''',
    },
}
MISTAKEN["practice_4_logdet_inverse"] = dict(MISTAKEN["practice_4_logdet_forward"])
