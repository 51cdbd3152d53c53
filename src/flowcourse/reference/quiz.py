"""Answers to the course's multiple-choice questions (part of the answer key, never shown to a kernel).

Each constant is named after the check that grades it (``quiz_<lesson>_<question>``) and holds the
correct letter or number. The seeds number their quiz Q1–Q5 and then Q7; the names keep the seeds'
numbers so instructors can trace each question to its source. Two of the seeds' explanations are wrong
and the lessons teach the truth instead: NICE's additive coupling is volume-preserving (log-det 0), not
a "non-volume-preserving extension" (that is RealNVP's name), and NICE's Jacobian is unit-triangular,
not orthogonal.
"""

# Lesson 01 — change of variables
quiz_01_q1 = "C"  # p_X(x) = p_Z(f⁻¹(x)) · |det J_{f⁻¹}|
quiz_01_q5 = "C"  # latent dimension equals data dimension
quiz_01_q7 = "B"  # N(0, I): easy to sample and evaluate, full support

# Lesson 02 — triangular Jacobians and autoregressive flows
quiz_02_q2 = "B"  # triangular Jacobian: determinant is the product of the diagonal

# Lesson 03 — RealNVP affine coupling
quiz_03_q3 = "B"  # scale non-zero, typically positive via exp

# Lesson 08 — flows in VAEs
quiz_08_q4 = "B"  # flows give exact likelihoods, VAEs a lower bound

# Lesson 01 — own questions and numeric practice answers
quiz_01_positive_log_prob = "B"  # a density may exceed 1; only its integral is 1
practice_3_rotation_logdet = 0.0  # det R(θ) = cos²θ + sin²θ = 1

# Lesson 02 — own questions
quiz_02_maf_sample_passes = 64  # d MADE passes for sampling, whatever the batch size
quiz_02_vae_posterior = "B"  # IAF: one-pass sampling, and the sample's log-det comes with it
quiz_02_leaky_mask = "C"  # output sees its own input: not autoregressive, Σα is not the log-det

# Lesson 07 — expressive power (own questions; the seeds' quiz has none on this topic)
quiz_07_pwc_invertible = "B"  # no step function is injective: the invertible subset is empty
quiz_07_tv_definition = "A"  # T_ε uses the total VARIATION ½∫|p − q| (the seed's "total variance" is a slip)
quiz_07_one_dimension = "B"  # 1-D ReLU planar flows approximate (Q2), error → 0 with more layers
quiz_07_householder_stack = "A"  # reflections are orthogonal: N(0, I) is mapped to itself exactly
quiz_07_depth_bound = "B"  # there exist (q, p) needing Ω̃(d^κ) layers: a necessary depth, not a sufficient one
quiz_07_relu_peaks = "A"  # Cᵀ∇log p(f(z₀)) = ∇log q(z₀) = 0 and C invertible: f(z₀) is a critical point of p
quiz_07_sylvester_rank_bound = 6  # M = 2 + 1 + 3 neurons bounds dim span{∇L}, whatever d = 10

# Lesson 06 — Sylvester and Householder flows (own questions; the seeds' pitfall on volume-preserving flows)
quiz_06_identity_test = "B"  # a log-det test at initialisation cannot see errors that grow with the parameters
quiz_06_householder_training = "C"  # reflections on N(0, I): the model stays N(0, I), zero gradient
quiz_06_cost = "D"  # Sylvester's identity: an m x m determinant per sample, O(m^3)
quiz_06_orthogonal_m = "A"  # at most d orthonormal columns in R^d
quiz_06_det_three_reflections = -1.0  # det H = -1 for each reflection, (-1)^3

# Lesson 05 — planar and radial flows
worked_05_logdet_raw_u = 0.580229  # log(1 + sech²(-0.5)), the seeds' worked example 3 (0.580), raw u
worked_05_logdet_u_hat = 0.220230  # log(1 + sech²(-0.5)·m(1)), m(1) = -1 + log(1 + e): same inputs with û
quiz_05_fold = "B"  # wᵀu = -2 < -1: a ↦ a - 2 tanh(a) decreases near 0, the layer folds
quiz_05_cost = "C"  # matrix determinant lemma: planar log-det in O(d)
quiz_05_reverse_kl = "A"  # reverse KL needs only x = f(z) and log|det ∂f/∂z|: the forward direction
quiz_05_radial_beta = "B"  # β < -α: the radius map decreases near z0, the layer folds through the centre
quiz_05_mode_seeking = "A"  # reverse KL is mode-seeking: a missed mode costs little, mass off p costs a lot

# Lesson 03 — own questions and numeric answers
quiz_03_same_mask = "C"  # every layer keeps x_1 = z_1: the model's x_1 marginal stays N(0, 1)
quiz_03_inverse_passes = "D"  # one conditioner pass: (log s, t) come from x_a = z_a, never inverted
quiz_03_nice = "A"  # additive coupling bends the Gaussian but p_X(f(z)) = p_Z(z): the peak stays 1/(2π)
quiz_03_nice_peak = 0.15915494309189535  # 1/(2π): a volume-preserving flow keeps the 2-D base's peak density
quiz_03_nats_per_dim = -1.18  # −2.36 nats per 2-D point / d = 2

# Lesson 04 — Glow (practice problem 4 in both directions, own questions; the seeds' quiz has none on Glow)
practice_4_logdet_forward = -228.49899654575074  # 32·32·(log 2 + log 0.5 + log 0.8) = 1024·log 0.8, base→data
practice_4_logdet_inverse = 228.49899654575074  # the data→base direction: the sign flips
quiz_04_bits_per_dim = 2.171383490069685  # (−85 + 64·ln 17)/(64·ln 2) for a mean log-density of 85 nats per image
quiz_04_nats_per_image = 96.70789463172358  # 2.18 bits/dim × 64 dims × ln 2
quiz_04_squeeze_name = "B"  # forward (B,4C,H/2,W/2) → (B,C,H,W) is depth-to-space: our Unsqueeze
quiz_04_actnorm_reload = "C"  # a plain-attribute flag is not in state_dict: the fresh model re-initialises
quiz_04_lu_cost = "A"  # log|det W| once per layer: O(C³) dense vs O(C) LU, then × h·w
quiz_04_level_dims = 16  # Glow((1, 8, 8), levels=3): 64 → 32 → 16 coordinates at levels 1, 2, 3

# Lesson 08 — flows in VAEs (own questions; quiz_08_q4 above is the seeds' Q4)
quiz_08_gap = "C"  # log p(x) − ELBO = KL(q(z|x) ‖ p(z|x)), not the KL to the prior in the ELBO's usual form
quiz_08_prior_direction = "A"  # tanh planar: posterior only (forward samples); a prior is evaluated at given z
quiz_08_sign = "B"  # an ELBO above a known log p(x): the forward log-dets were added to log q_K, not subtracted
quiz_08_reading = "B"  # L_256 rose about as much as the ELBO, the gap stayed: a better model, not a tighter bound
quiz_08_collapse = "C"  # Var_x E[z_2|x] ≈ 0 and posterior sd ≈ 1: z_2 switched off, its posterior is the prior
