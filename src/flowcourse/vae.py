r"""The plumbing of lesson 08's VAE: binary digits, encoder and decoder networks, a trainer and a scorer.

A VAE with a flow posterior is four formulas wired together by networks, a reparameterised sampler and an
optimiser. The formulas are the lesson's exercises, so this module does not contain them; a
:class:`FlowVAE` is built with them as keyword arguments, typically the functions written in the notebook:

* ``base_log_prob(z, mu, log_sigma)``: :math:`\log q_0(z \mid x)` of the encoder's diagonal Gaussian,
  summed over the last dimension;
* ``likelihood(x, logits)``: :math:`\log p(x \mid z)` of binary pixels given the decoder's logits;
* ``posterior_flow(z0, u, w, b)``: the amortised posterior flow, ``(z_K, sum of forward log-dets)`` for
  ``z0`` of shape ``(n, d)`` and per-row parameters ``u, w`` of shape ``(n, K, d)``, ``b`` of shape
  ``(n, K)``;
* ``bound(log_px_given_z, log_pz, log_q0, sum_logdet)``: the Monte-Carlo ELBO per example from pieces of
  shape ``(S, n)``.

A second, smaller part fits a posterior to ONE observation of a fixed model whose log joint
:math:`\log p(x, z)` is given (no encoder, no decoder to train), with the same formulas:
:func:`grid_log_evidence` (the true posterior on a grid and :math:`\log p(x)` by quadrature),
:class:`PlanarLayers`, :class:`FittedPosterior`, :func:`posterior_elbo` and :func:`fit_posterior`.

Everything else is here: :func:`binarize`, the two tanh MLPs, the reparameterised draw
:math:`z_0 = \mu + \sigma \odot \varepsilon`, an optional flow prior (a base→data flow on :math:`\mathcal{N}(0, I)`,
evaluated by its inverse), the log importance weights, the ELBO, and :func:`train_vae`.

The lesson's notebook shows the wiring: ``vae.train_vae(2, steps=250, base_log_prob=diagonal_normal_log_prob,
likelihood=bernoulli_log_prob, posterior_flow=amortized_planar_flow, bound=flow_elbo)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm import tqdm

from flowcourse.base import Flow, FlowDistribution, StandardNormal, check_batch
from flowcourse.data import digits
from flowcourse.training import single_thread

__all__ = ["DIGITS_THRESHOLD", "MAX_GRAD_NORM", "binarize", "binary_digits", "mlp", "FlowVAE",
           "log_importance_weights", "elbo", "train_vae", "grid_log_evidence", "PlanarLayers", "FittedPosterior",
           "posterior_elbo", "fit_posterior"]

DIGITS_THRESHOLD = 8.0
MAX_GRAD_NORM = 5.0
_FORMULAS = ("base_log_prob", "likelihood", "posterior_flow", "bound")


def binarize(x: Tensor, threshold: float = DIGITS_THRESHOLD) -> Tensor:
    r"""Binary pixels :math:`\mathbb{1}[x > \text{threshold}]`, flattened to ``(batch, pixels)``.

    The digits' grey levels are 0..16; the default threshold puts levels 9..16 on and 0..8 off, which
    turns about 29% of the pixels on.

    >>> binarize(torch.tensor([[[0.0, 8.0], [9.0, 16.0]]]))
    tensor([[0., 0., 1., 1.]])
    """
    check_batch(x, name="x")
    return (x > threshold).to(x.dtype).flatten(1)


def binary_digits(split: str = "train") -> Tensor:
    """The binarised 8x8 digits of :func:`flowcourse.data.digits`, ``split`` = train, val or test: ``(n, 64)``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    return binarize(getattr(digits(), split))


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two hidden tanh layers of width ``hidden``: the encoder's and the decoder's network."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, n_out))


def _check_formulas(formulas: dict[str, object]) -> None:
    for name in formulas:
        if not callable(formulas[name]):
            raise TypeError(f"{name} must be a function (the notebook's), got {type(formulas[name]).__name__}")


class FlowVAE(nn.Module):
    r"""A VAE on binary images with an amortised flow posterior and an optional flow prior.

    * Encoder: :math:`x \mapsto (\mu, \log\sigma, u_{1:K}, w_{1:K}, b_{1:K})`, all per example
      (:math:`2d + K(2d + 1)` outputs).
    * Posterior: :math:`z_0 = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal{N}(0, I)`, then
      :math:`z_K` = ``posterior_flow(z0, u, w, b)`` (base→data); ``n_flows = 0`` is the Gaussian VAE.
    * Prior: :math:`\mathcal{N}(0, I)`, or the :class:`~flowcourse.base.FlowDistribution` of
      ``prior_flow(latent_dim)`` on :math:`\mathcal{N}(0, I)`, whose ``log_prob`` runs the flow's inverse.
    * Decoder: :math:`z \mapsto` Bernoulli logits of the ``data_dim`` pixels.

    Args:
        data_dim: number of binary pixels (64 for the 8x8 digits).
        latent_dim: :math:`d`.
        hidden: width of the encoder's and decoder's two hidden layers.
        n_flows: :math:`K`, layers of the posterior flow.
        base_log_prob, likelihood, posterior_flow, bound: the formulas (see the module's docstring).
        prior_flow: ``None`` (standard normal prior) or a function of ``latent_dim`` returning a
            :class:`~flowcourse.base.Flow`; it is called after the encoder and decoder are built, so one
            ``torch.manual_seed`` before the model fixes every initial weight.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.
    """

    def __init__(self, data_dim: int = 64, latent_dim: int = 2, hidden: int = 64, n_flows: int = 0, *,
                 base_log_prob: Callable[[Tensor, Tensor, Tensor], Tensor],
                 likelihood: Callable[[Tensor, Tensor], Tensor],
                 posterior_flow: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
                 bound: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
                 prior_flow: Callable[[int], Flow] | None = None) -> None:
        super().__init__()
        sizes = (("data_dim", data_dim, 1), ("latent_dim", latent_dim, 1), ("hidden", hidden, 1),
                 ("n_flows", n_flows, 0))
        for name, value, least in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
        _check_formulas({"base_log_prob": base_log_prob, "likelihood": likelihood,
                         "posterior_flow": posterior_flow, "bound": bound})
        if prior_flow is not None and not callable(prior_flow):
            raise TypeError(f"prior_flow must be None or a function of latent_dim returning a Flow, "
                            f"got {type(prior_flow).__name__}")
        self.data_dim, self.latent_dim, self.n_flows = data_dim, latent_dim, n_flows
        self.base_log_prob, self.likelihood = base_log_prob, likelihood
        self.posterior_flow, self.bound = posterior_flow, bound
        d, K = latent_dim, n_flows
        self.encoder = mlp(data_dim, hidden, 2 * d + K * (2 * d + 1))
        self.decoder = mlp(d, hidden, data_dim)
        base = StandardNormal(d)
        self.prior = base if prior_flow is None else FlowDistribution(prior_flow(d), base)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        r"""The encoder's outputs ``(mu, log_sigma, u, w, b)`` for ``x`` of shape ``(n, data_dim)``.

        Shapes ``(n, d)``, ``(n, d)``, ``(n, K, d)``, ``(n, K, d)``, ``(n, K)``; ``u`` is raw (the flow
        makes it invertible).
        """
        n, d, K = x.shape[0], self.latent_dim, self.n_flows
        mu, log_sigma, u, w, b = self.encoder(x).split([d, d, K * d, K * d, K], dim=-1)
        return mu, log_sigma, u.reshape(n, K, d), w.reshape(n, K, d), b

    def posterior(self, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Reparameterised posterior samples from given noise, with the pieces of their log-density.

        ``eps`` of shape ``(S, n, d)`` gives :math:`z_0 = \mu + \sigma\odot\varepsilon` and :math:`z_K`;
        returns ``(z_K, log_q0, sum_logdet)`` of shapes ``(S, n, d)``, ``(S, n)``, ``(S, n)``: the
        samples, :math:`\log q_0(z_0 \mid x)` and the posterior flow's summed forward log-dets.
        """
        check_batch(x, (self.data_dim,), name="x")
        check_batch(eps, name="eps")
        if eps.dim() != 3 or eps.shape[1:] != (x.shape[0], self.latent_dim):
            raise ValueError(f"eps must have shape (S, {x.shape[0]}, {self.latent_dim}) = (samples, batch, "
                             f"latent_dim), got {tuple(eps.shape)}")
        S, n, d = eps.shape
        mu, log_sigma, u, w, b = self.encode(x)
        z0 = mu + torch.exp(log_sigma) * eps
        log_q0 = self.base_log_prob(z0, mu, log_sigma)
        # The S samples of example i share its flow parameters: repeat them along the sample axis.
        zK, sum_logdet = self.posterior_flow(z0.reshape(S * n, d), u.repeat(S, 1, 1), w.repeat(S, 1, 1),
                                             b.repeat(S, 1))
        return zK.reshape(S, n, d), log_q0, sum_logdet.reshape(S, n)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log p(z)` for ``z`` of shape ``(..., d)``; the result drops the last dimension."""
        return self.prior.log_prob(z.reshape(-1, self.latent_dim)).reshape(z.shape[:-1])

    def decode(self, z: Tensor) -> Tensor:
        r"""Bernoulli logits :math:`\ell(z)` of shape ``(..., data_dim)``."""
        return self.decoder(z)

    def bound_pieces(self, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""``(log p(x | z_K), log p(z_K), log q_0(z_0 | x), sum_logdet)`` at the draws of ``eps``, each ``(S, n)``."""
        zK, log_q0, sum_logdet = self.posterior(x, eps)
        return self.likelihood(x, self.decode(zK)), self.prior_log_prob(zK), log_q0, sum_logdet

    def log_weights(self, x: Tensor, eps: Tensor) -> Tensor:
        r"""Log importance weights :math:`\log p(x, z_K) - \log q_K(z_K \mid x)` at the draws of ``eps``, ``(S, n)``.

        Each weight is the ELBO estimate of a single draw: ``bound`` applied to every draw on its own.
        """
        pieces = self.bound_pieces(x, eps)
        S, n = pieces[0].shape
        return self.bound(*(p.reshape(1, S * n) for p in pieces)).reshape(S, n)


def _check_binary(model: FlowVAE, x: Tensor) -> None:
    if not isinstance(model, FlowVAE):
        raise TypeError(f"model must be a FlowVAE, got {type(model).__name__}")
    check_batch(x, (model.data_dim,), name="x")
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("x must hold binary pixels (0 or 1) for the Bernoulli decoder, got other values; "
                         "binarise grey levels first with binarize(x)")


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _noise(model: FlowVAE, x: Tensor, n_samples: int, generator: torch.Generator | None) -> Tensor:
    _check_binary(model, x)
    n_samples = _check_count("n_samples", n_samples)
    return torch.randn((n_samples, x.shape[0], model.latent_dim), generator=generator, dtype=x.dtype)


def log_importance_weights(model: FlowVAE, x: Tensor, n_samples: int = 1, *,
                           generator: torch.Generator | None = None) -> Tensor:
    r"""Log importance weights :math:`\log p(x \mid z_K) + \log p(z_K) - \log q_K(z_K \mid x)`, ``(S, n)``.

    :math:`z_K \sim q_K(\cdot \mid x)` by reparameterisation, with the noise drawn as one tensor
    ``torch.randn((n_samples, n, latent_dim), generator=generator)`` of ``x``'s dtype. Each weight
    :math:`w = p(x, z_K)/q_K(z_K \mid x)` is an unbiased estimate of :math:`p(x)`; the ELBO averages their
    logs, the importance-weighted bound the weights themselves.

    References: Burda, Grosse & Salakhutdinov (2016), *Importance Weighted Autoencoders*.
    """
    return model.log_weights(x, _noise(model, x, n_samples, generator))


def elbo(model: FlowVAE, x: Tensor, n_samples: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Monte-Carlo ELBO per example, shape ``(n,)``, in nats: the model's ``bound`` at ``n_samples`` draws.

    The draws are those of :func:`log_importance_weights` with the same generator state, so it equals the
    mean of those log weights.
    """
    eps = _noise(model, x, n_samples, generator)
    return model.bound(*model.bound_pieces(x, eps))


def train_vae(K: int, *, steps: int, base_log_prob: Callable[[Tensor, Tensor, Tensor], Tensor],
              likelihood: Callable[[Tensor, Tensor], Tensor],
              posterior_flow: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
              bound: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
              prior_flow: Callable[[int], Flow] | None = None, seed: int = 0, latent_dim: int = 2,
              hidden: int = 64, batch_size: int = 256, lr: float = 1e-2, data: Tensor | None = None,
              progress: bool = False) -> FlowVAE:
    r"""Train a :class:`FlowVAE` with ``K`` posterior flow layers by maximising the ELBO; return it.

    Adam on :math:`-\frac1B\sum_i \mathrm{ELBO}(x_i)` (``bound`` with one reparameterised draw per image),
    the gradient norm clipped at ``MAX_GRAD_NORM``, over shuffled epochs of ``data`` (binary pixels
    ``(n, pixels)``; default: the binarised training digits, :func:`binary_digits`). Deterministic:
    ``torch.manual_seed(seed)`` fixes the initial weights and a generator seeded with ``seed`` the
    minibatches and the noise. Runs on one torch thread.

    Raises:
        FloatingPointError: the ELBO became NaN or infinite (the message names the step).

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.
    """
    steps, batch_size = _check_count("steps", steps), _check_count("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    x_all = binary_digits("train") if data is None else data
    check_batch(x_all, name="data")
    if x_all.dim() != 2:
        raise ValueError(f"data must have shape (n, pixels) of binary pixels, got {tuple(x_all.shape)}; "
                         "flatten and binarise images with binarize(x)")
    with single_thread():
        torch.manual_seed(seed)
        model = FlowVAE(x_all.shape[1], latent_dim, hidden, K, base_log_prob=base_log_prob, likelihood=likelihood,
                        posterior_flow=posterior_flow, bound=bound, prior_flow=prior_flow).to(x_all.dtype)
        _check_binary(model, x_all)
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        batch_size = min(batch_size, x_all.shape[0])
        order, start = torch.randperm(x_all.shape[0], generator=generator), 0
        for step in tqdm(range(steps), desc=f"VAE K={K}", disable=not progress):
            if start + batch_size > x_all.shape[0]:
                order, start = torch.randperm(x_all.shape[0], generator=generator), 0
            x = x_all[order[start:start + batch_size]]
            start += batch_size
            eps = torch.randn((1, batch_size, latent_dim), generator=generator, dtype=x.dtype)
            loss = -model.bound(*model.bound_pieces(x, eps)).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the negative ELBO became {float(loss)} at step {step} of {steps}; "
                                         "lower lr or check the posterior log-density")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            # A rare bad minibatch can throw the amortised flow parameters far out (seen: K = 8, lr = 1e-2,
            # test ELBO -26 instead of -20); clipping the gradient norm keeps training on track.
            nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimiser.step()
    return model.eval()


# --- a posterior we can see: fitting q to one fixed model ---------------------------------------------------------


def grid_log_evidence(log_joint: Callable[[Tensor], Tensor], *, half_width: float = 5.0,
                      n: int = 401) -> tuple[Tensor, Tensor, float]:
    r"""The unnormalised log posterior on a square grid and :math:`\log p(x)` by quadrature.

    ``log_joint(z)`` is :math:`\log p(x, z)` for the observed :math:`x`, for points ``z`` of shape
    ``(m, 2)``. On the grid :math:`[-h, h]^2` with ``n`` points per axis,
    :math:`\log p(x) \approx \operatorname{logsumexp}_{\text{grid}} \log p(x, z) + \log(\text{cell area})`.
    Returns ``(t, log_joint_grid, log_px)``: the axis ``t`` (``n`` points), the log joint of shape
    ``(n, n)`` (row ``i``: :math:`z_1 = t_i`; column ``j``: :math:`z_2 = t_j`) and the float :math:`\log p(x)`.

    >>> t, lj, log_px = grid_log_evidence(lambda z: -0.5 * (z ** 2).sum(-1) - math.log(2 * math.pi))
    >>> round(log_px, 4)  # a normalised density integrates to 1
    0.0
    """
    if not half_width > 0 or isinstance(n, bool) or not isinstance(n, int) or n < 3:
        raise ValueError(f"need half_width > 0 and an int n >= 3, got {half_width!r}, {n!r}")
    t = torch.linspace(-half_width, half_width, n, dtype=torch.get_default_dtype())
    lj = log_joint(torch.cartesian_prod(t, t)).reshape(n, n)
    cell = float(t[1] - t[0]) ** 2
    return t, lj, float(torch.logsumexp(lj.flatten(), 0)) + math.log(cell)


class PlanarLayers(nn.Module):
    r"""``K`` planar layers with ONE parameter set each (not amortised), run by the lesson's ``posterior_flow``.

    ``forward(z0)`` repeats the parameters ``u, w`` of shape ``(K, d)`` and ``b`` of shape ``(K,)`` for every
    row of ``z0`` and returns ``posterior_flow(z0, u, w, b)``: ``(z_K, sum of forward log-dets)``.
    The initial ``u, w`` are small random numbers (``0.5 * randn``), ``b = 0``.
    """

    def __init__(self, K: int, d: int, *, posterior_flow: Callable[[Tensor, Tensor, Tensor, Tensor],
                                                                    tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        _check_formulas({"posterior_flow": posterior_flow})
        self.posterior_flow = posterior_flow
        self.u = nn.Parameter(0.5 * torch.randn(K, d))
        self.w = nn.Parameter(0.5 * torch.randn(K, d))
        self.b = nn.Parameter(torch.zeros(K))

    def forward(self, z0: Tensor) -> tuple[Tensor, Tensor]:
        """``(z_K, sum_logdet)`` for ``z0`` of shape ``(n, d)``."""
        n, (K, d) = z0.shape[0], self.u.shape
        return self.posterior_flow(z0, self.u.expand(n, K, d), self.w.expand(n, K, d), self.b.expand(n, K))


class FittedPosterior(nn.Module):
    r"""A posterior for ONE observation: :math:`z_0 \sim \mathcal{N}(\mu, \operatorname{diag}\sigma^2)` pushed
    through ``flow`` (any module ``z0 -> (z_K, sum of forward log-dets)``; ``None``: the Gaussian itself).

    ``base_log_prob(z, mu, log_sigma)`` is the lesson's :math:`\log q_0`. :math:`\mu = 0`,
    :math:`\log\sigma = 0` at the start.
    """

    def __init__(self, d: int, flow: nn.Module | None = None, *,
                 base_log_prob: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        _check_formulas({"base_log_prob": base_log_prob})
        self.base_log_prob, self.flow = base_log_prob, flow
        self.mu = nn.Parameter(torch.zeros(d))
        self.log_sigma = nn.Parameter(torch.zeros(d))

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        r"""``(z_K, log_q0, sum_logdet)`` of ``n_samples`` reparameterised draws: ``(S, d)``, ``(S,)``, ``(S,)``."""
        eps = torch.randn((_check_count("n_samples", n_samples), self.mu.shape[0]), generator=generator,
                          dtype=self.mu.dtype)
        z0 = self.mu + self.log_sigma.exp() * eps
        log_q0 = self.base_log_prob(z0, self.mu, self.log_sigma)
        if self.flow is None:
            return z0, log_q0, torch.zeros_like(log_q0)
        zK, sum_logdet = self.flow(z0)
        return zK, log_q0, sum_logdet


def posterior_elbo(log_joint: Callable[[Tensor], Tensor], posterior: FittedPosterior, *,
                   bound: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], n_samples: int,
                   generator: torch.Generator | None = None) -> Tensor:
    r"""The Monte-Carlo ELBO of ``posterior`` for the model ``log_joint`` (a 0-d tensor), by ``bound``.

    The bound's pieces are passed as ``(S, 1)``: :math:`\log p(x, z_K)` as ``log_px_given_z`` with a zero
    ``log_pz`` (the log joint already contains the prior), :math:`\log q_0` and the summed log-dets.
    """
    zK, log_q0, sum_logdet = posterior.sample(n_samples, generator)
    col = lambda t: t[:, None]  # noqa: E731 - one example: shape (S, 1)
    return bound(col(log_joint(zK)), torch.zeros_like(col(log_q0)), col(log_q0), col(sum_logdet))[0]


def fit_posterior(log_joint: Callable[[Tensor], Tensor], posterior: FittedPosterior, *,
                  bound: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], steps: int = 400,
                  n_samples: int = 64, lr: float = 0.05, seed: int = 0) -> FittedPosterior:
    r"""Maximise :func:`posterior_elbo` over ``posterior``'s parameters (Adam, ``n_samples`` draws a step).

    Adam's step size falls linearly from ``lr`` to 0 over the ``steps``, so the returned parameters are not
    one noisy step away from where the fit had settled.

    The model is fixed, so this is variational inference for one observation: the best ELBO the family
    reaches is :math:`\log p(x) - \min_q \mathrm{KL}(q\,\|\,p(z \mid x))`. Deterministic in ``seed`` (the noise
    comes from a generator seeded with it). Runs on one torch thread; returns ``posterior``.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, section 6.1.
    """
    steps = _check_count("steps", steps)
    generator = torch.Generator().manual_seed(seed)
    with single_thread():
        optimiser = torch.optim.Adam(posterior.parameters(), lr=lr)
        for step in range(steps):
            for group in optimiser.param_groups:  # the step size falls linearly to 0: a calm last iterate
                group["lr"] = lr * (1 - step / steps)
            loss = -posterior_elbo(log_joint, posterior, bound=bound, n_samples=n_samples, generator=generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the negative ELBO became {float(loss)} at step {step} of {steps}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return posterior
