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

STUDENTS = [
    {"id": "l04-conv1x1-missing-hw", "lesson": "04-glow", "patches": {"conv1x1-logdet": CONV1X1_MISSING_HW},
     "expect_points": {"test-conv1x1-logdet": 0},
     "expect_message": "missing h·w factor"},
    {"id": "l04-lu-missing-hw", "lesson": "04-glow", "patches": {"lu-logdet": LU_MISSING_HW},
     # the 1x1-pixel case of lu_logdet passes (h·w = 1); the layer and practice 4 use lu_logdet
     "expect_points": {"test-lu-logdet": 0.25, "test-lu-conv": 0, "test-practice-4-forward": 0,
                       "test-practice-4-inverse": 0},
     "expect_message": "missing h·w factor"},
    {"id": "l04-practice-4-sign-not-flipped", "lesson": "04-glow",
     "patches": {"answer-practice-4": PRACTICE_4_SIGN_NOT_FLIPPED},
     "expect_points": {"test-practice-4-inverse": 0},
     "expect_message": "the sign is flipped"},
    {"id": "l04-lu-dense-slogdet", "lesson": "04-glow", "patches": {"lu-conv": LU_DENSE_SLOGDET},
     "expect_points": {"test-lu-conv": 0},
     "expect_message": "dense slogdet for W"},
    {"id": "l04-lu-forward-applies-inverse", "lesson": "04-glow", "patches": {"lu-conv": LU_FORWARD_APPLIES_INVERSE},
     "expect_points": {"test-lu-conv": 0},
     "expect_message": "forward applies W⁻¹ (direction swapped)"},
    {"id": "l04-actnorm-reinit-after-load", "lesson": "04-glow", "patches": {"actnorm": ACTNORM_ATTRIBUTE_FLAG},
     "expect_points": {"test-actnorm": 0},
     "expect_message": "ActNorm re-initialised after load_state_dict"},
    {"id": "l04-squeeze-named-wrongly", "lesson": "04-glow", "patches": {"squeeze-layer": SQUEEZE_LAYER_UNSQUEEZES},
     "expect_points": {"test-squeeze-layer": 0},
     "expect_message": "Squeeze.forward un-squeezes (direction named wrongly)"},
    {"id": "l04-squeeze-plain-reshape", "lesson": "04-glow", "patches": {"squeeze": SQUEEZE_PLAIN_RESHAPE},
     # on a 2x2 image a plain reshape happens to be squeeze (1 of 4 cases); the Squeeze layer uses squeeze
     "expect_points": {"test-squeeze": 0.5, "test-squeeze-layer": 0},
     "expect_message": "plain reshape instead of 2×2 blocks"},
    {"id": "l04-bpd-in-nats", "lesson": "04-glow", "patches": {"answer-bpd": BPD_IN_NATS},
     "expect_points": {"test-bpd": 0},
     "expect_message": "nats per dimension, not bits"},
    {"id": "l04-bpd-per-image", "lesson": "04-glow", "patches": {"answer-bpd": BPD_PER_IMAGE},
     "expect_points": {"test-bpd": 0},
     "expect_message": "bits per image, not per dimension"},
]
