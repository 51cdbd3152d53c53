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
