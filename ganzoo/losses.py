"""GAN losses as pure functions of discriminator outputs (logits).

Each family has a `<name>_generator_loss(fake_logits)` and a
`<name>_discriminator_loss(real_logits, fake_logits)`, named as in TF-GAN.
All return the mean over the batch; `ganzoo.GAN` divides by the number of
replicas so that gradients summed across replicas equal the global-batch
gradient.
"""

from keras import ops


def _mean(x):
    return ops.mean(ops.cast(x, "float32"))


# Goodfellow et al. 2014, eq. 1: D maximises log D(x) + log(1 - D(G(z))).
# With D = sigmoid(logit): -log D = softplus(-logit), -log(1 - D) = softplus(logit).
def minimax_discriminator_loss(real_logits, fake_logits):
    """-E[log D(x)] - E[log(1 - D(G(z)))]."""
    return _mean(ops.softplus(-real_logits)) + _mean(ops.softplus(fake_logits))


def minimax_generator_loss(fake_logits):
    """E[log(1 - D(G(z)))]: the saturating loss of the paper's minimax game."""
    return -_mean(ops.softplus(fake_logits))


# The discriminator side of the non-saturating game is the minimax one.
non_saturating_discriminator_loss = minimax_discriminator_loss


def non_saturating_generator_loss(fake_logits):
    """-E[log D(G(z))]: the paper's practical fix for early saturation."""
    return _mean(ops.softplus(-fake_logits))


# Mao et al. 2017 (LSGAN), with targets a=0 (fake), b=1 (real), c=1.
def least_squares_discriminator_loss(real_logits, fake_logits):
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]."""
    return 0.5 * _mean(ops.square(real_logits - 1.0)) + 0.5 * _mean(
        ops.square(fake_logits)
    )


def least_squares_generator_loss(fake_logits):
    """0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * _mean(ops.square(fake_logits - 1.0))


# Lim & Ye 2017; Miyato et al. 2018.
def hinge_discriminator_loss(real_logits, fake_logits):
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return _mean(ops.relu(1.0 - real_logits)) + _mean(ops.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits):
    """-E[D(G(z))]."""
    return -_mean(fake_logits)


# Arjovsky et al. 2017: the critic estimates the Wasserstein-1 distance.
def wasserstein_discriminator_loss(real_logits, fake_logits):
    """E[D(G(z))] - E[D(x)]: minimising it maximises the critic's estimate."""
    return _mean(fake_logits) - _mean(real_logits)


def wasserstein_generator_loss(fake_logits):
    """-E[D(G(z))]."""
    return -_mean(fake_logits)


def gradient_penalty(critic, real, fake, alpha, weight=10.0, norm_scale=1.0, group=1):
    """weight * E[(||grad D(x_hat)||_2 * norm_scale - 1)^2] at x_hat = fake + alpha (real - fake).

    Gulrajani et al. 2017 (WGAN-GP), eq. 3, with `alpha` uniform in [0, 1] of
    shape `[batch, 1, ...]`. A small epsilon inside the square root keeps the
    gradient of the norm finite where the critic's gradient is zero.
    `norm_scale` f measures the norm on images upsampled f times by pixel
    repetition as on the small images themselves (the gradient on the large
    one is the small one's spread over f^2 pixels, so its norm is 1/f).
    `group` m: a packed critic (PacGAN) judges m consecutive samples as one
    input, so each group shares one alpha (its first sample's) and one norm.
    """
    import tensorflow as tf

    if group > 1:
        alpha = ops.repeat(alpha[::group], group, axis=0)
    x_hat = fake + alpha * (real - fake)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat, training=True)
    gradients = ops.reshape(ops.cast(tape.gradient(scores, x_hat), "float32"), (-1, group * _size(x_hat)))
    norms = ops.sqrt(ops.sum(ops.square(gradients), axis=1) + 1e-12)
    return weight * _mean(ops.square(norms * norm_scale - 1.0))


def _size(samples):
    """Values per sample: the product of the non-batch dimensions."""
    size = 1
    for dim in samples.shape[1:]:
        size *= int(dim)
    return size


def r1_penalty(critic, real, weight=10.0, group=1):
    """weight / 2 * E[||grad_x D(x)||_2^2] on real samples `x`.

    Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do
    actually Converge?" (arXiv:1801.04406), eq. 9: penalising D's gradient
    on the data alone makes simultaneous gradient descent converge locally.
    `weight` is their gamma. For lazy regularisation (Karras et al. 2020,
    StyleGAN2, section 3.1) call it every k-th step with weight k * gamma.
    `group` m: a packed critic's input is m samples, so the norm is taken
    over each group (the mean over groups, not over samples).
    """
    import tensorflow as tf

    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        # The sum's gradient is each input's own: D scores its inputs independently.
        scores = ops.sum(ops.cast(critic(real, training=True), "float32"))
    gradients = ops.reshape(ops.cast(tape.gradient(scores, real), "float32"), (-1, group * _size(real)))
    return 0.5 * weight * _mean(ops.sum(ops.square(gradients), axis=1))


def discriminator_accuracy(real_logits, fake_logits, loss="non_saturating"):
    """The share of a batch D classifies right: real above its boundary,
    fake below (the boundary is 0, or 0.5 for the least-squares targets
    0/1), over the real and the fake samples together."""
    centre = 0.5 if loss == "least_squares" else 0.0
    right = ops.concatenate([ops.reshape(ops.cast(real_logits, "float32") > centre, (-1,)),
                             ops.reshape(ops.cast(fake_logits, "float32") <= centre, (-1,))])
    return ops.mean(ops.cast(right, "float32"))


def cycle_consistency_loss(real, reconstructed):
    """E[|x - F(G(x))|]: the L1 cycle loss of Zhu et al. 2017, eq. 2 (also
    their identity loss, with F(x) in place of F(G(x)))."""
    return _mean(ops.abs(ops.cast(real, "float32") - ops.cast(reconstructed, "float32")))


LOSSES = {
    "minimax": (minimax_generator_loss, minimax_discriminator_loss),
    "non_saturating": (non_saturating_generator_loss, non_saturating_discriminator_loss),
    "least_squares": (least_squares_generator_loss, least_squares_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "wasserstein": (wasserstein_generator_loss, wasserstein_discriminator_loss),
}


def get(name):
    """Return `(generator_loss, discriminator_loss)` for a loss name."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown GAN loss {name!r}. Choose one of: {', '.join(sorted(LOSSES))}."
        ) from None
