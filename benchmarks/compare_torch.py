"""ganzoo against a PyTorch twin of the same GAN, alternating in one process.

    python benchmarks/compare_torch.py [--entries dcgan wgan_gp cyclegan] [--rounds 5] [--steps 20]
                                       [--xla off|on|both] [--json out.json]

The twins are dcgan and wgan_gp at their default size (32x32x1, 32 filters,
batch 64), and cyclegan at its (32x32x3, 32 filters, 2 residual blocks, one
downsampling, 2-layer PatchGANs, batch 16). dcgan's has the same layers (4x4 strided (transposed) convolutions, batch norm, ReLU /
LeakyReLU(0.2), tanh, a dense logit), the same step (one D update on a real
and a generated batch, then one G update on fresh noise, non-saturating loss,
Adam(2e-4, 0.5)), the same batch. ganzoo runs with its stabilisers off
(no EMA, no augmentation), as the twins have none. wgan_gp's twin has its
layer-norm critic and its step: five critic updates with the gradient
penalty (a double backward), then one generator update, Adam(2e-4, 0.5,
0.9). PyTorch runs eagerly with
as many threads as TensorFlow uses. Rounds alternate (ganzoo, twin, ganzoo,
...), so both see the same machine; each round is a window of `--steps`
steps after a warm-up, and the best and the median are printed with the
CPU's flags and the float32 matmul rate. cyclegan's twin has its layers
(reflection padding, instance norm with a learned scale and offset, ReLU,
stride-2 and transposed convolutions, tanh; PatchGANs with LeakyReLU(0.2))
and its step: both generators on the least-squares and cycle losses
(lambda 10, no identity term), then both discriminators on the real images
and on fakes through a history pool of 50, Adam(2e-4, 0.5).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GANZOO_XLA_PROBE"] = "0"

import torch  # noqa: E402
from torch import nn  # noqa: E402

try:  # torch imports triton lazily (its optimizers do); after TensorFlow, triton's native module crashes
    import triton  # noqa: E402, F401
except ImportError:
    pass

BATCH, LATENT, FILTERS = 64, 100, 32


def twin(channels=1, critic_norm="batch"):
    """ganzoo's dcgan network at 32x32 in PyTorch (widths 128, 64, 32); wgan_gp's critic
    normalises over each sample's (C, H, W), as Keras' LayerNormalization(axis=(1, 2, 3))."""
    def norm(c, side):
        return nn.BatchNorm2d(c) if critic_norm == "batch" else nn.LayerNorm([c, side, side])

    generator = nn.Sequential(
        nn.Linear(LATENT, 4 * 4 * 128, bias=False), nn.Unflatten(1, (128, 4, 4)),
        nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, channels, 4, 2, 1), nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(channels, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1, bias=False), norm(64, 8), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), norm(128, 4), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(4 * 4 * 128, 1),
    )
    return generator, discriminator


class TorchTwin:
    """A twin's networks, optimizers and one fixed real batch; subclasses define `step`."""

    critic_norm, learning_rate, betas = "batch", 2e-4, (0.5, 0.999)

    def __init__(self):
        torch.manual_seed(0)
        self.g, self.d = twin(critic_norm=self.critic_norm)
        self.g_opt = torch.optim.Adam(self.g.parameters(), self.learning_rate, betas=self.betas)
        self.d_opt = torch.optim.Adam(self.d.parameters(), self.learning_rate, betas=self.betas)
        self.real = torch.rand(BATCH, 1, 32, 32) * 2 - 1

    @staticmethod
    def update(optimizer, loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def rate(self, steps):
        """Images/s of `steps` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return BATCH * steps / (time.perf_counter() - start)


class TorchDCGAN(TorchTwin):
    def __init__(self):
        super().__init__()
        self.loss = nn.BCEWithLogitsLoss()
        self.ones, self.zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

    def step(self):
        fake = self.g(torch.randn(BATCH, LATENT)).detach()
        d_loss = self.loss(self.d(self.real), self.ones) + self.loss(self.d(fake), self.zeros)
        self.update(self.d_opt, d_loss)
        g_loss = self.loss(self.d(self.g(torch.randn(BATCH, LATENT))), self.ones)
        self.update(self.g_opt, g_loss)
        return d_loss.item(), g_loss.item()


class TorchWGANGP(TorchTwin):
    """wgan_gp's step: 5 critic updates (Wasserstein loss + gradient penalty, lambda 10, on the one real
    batch with fresh noise each), then one generator update; Adam(2e-4, 0.5, 0.9)."""

    critic_norm, learning_rate, betas = "layer", 2e-4, (0.5, 0.9)

    def step(self):
        for _ in range(5):
            fake = self.g(torch.randn(BATCH, LATENT)).detach()
            alpha = torch.rand(BATCH, 1, 1, 1)
            x_hat = (fake + alpha * (self.real - fake)).requires_grad_(True)
            gradients, = torch.autograd.grad(self.d(x_hat).sum(), x_hat, create_graph=True)
            penalty = 10 * ((gradients.flatten(1).square().sum(1) + 1e-12).sqrt() - 1).square().mean()
            d_loss = self.d(fake).mean() - self.d(self.real).mean() + penalty
            self.update(self.d_opt, d_loss)
        g_loss = -self.d(self.g(torch.randn(BATCH, LATENT))).mean()
        self.update(self.g_opt, g_loss)
        return d_loss.item(), g_loss.item()


def resnet_generator(channels=3, filters=32, blocks=2):
    """ganzoo's cyclegan generator at its digits default (one downsampling)."""
    def norm_relu(c):
        return [nn.InstanceNorm2d(c, affine=True), nn.ReLU()]

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), *norm_relu(c),
                                      nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False),
                                      nn.InstanceNorm2d(c, affine=True))

        def forward(self, x):
            return x + self.body(x)

    inside = filters * 2
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(channels, filters, 7, bias=False), *norm_relu(filters),
        nn.Conv2d(filters, inside, 3, 2, 1, bias=False), *norm_relu(inside),
        *[Residual(inside) for _ in range(blocks)],
        nn.ConvTranspose2d(inside, filters, 3, 2, 1, output_padding=1, bias=False), *norm_relu(filters),
        nn.ReflectionPad2d(3), nn.Conv2d(filters, channels, 7), nn.Tanh(),
    )


def patch_discriminator(channels=3, filters=32):
    """ganzoo's 2-layer PatchGAN: 4x4 convolutions, stride 2, 2, then 1."""
    return nn.Sequential(
        nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(filters, filters * 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(filters * 2, affine=True),
        nn.LeakyReLU(0.2),
        nn.Conv2d(filters * 2, filters * 4, 4, 1, "same", bias=False), nn.InstanceNorm2d(filters * 4, affine=True),
        nn.LeakyReLU(0.2),
        nn.Conv2d(filters * 4, 1, 4, 1, "same"),
    )


class HistoryPool:
    """Shrivastava et al.'s pool: fill to 50, then each fake swaps with a stored one with probability 1/2."""

    def __init__(self, size=50):
        self.size, self.images = size, []

    def __call__(self, batch):
        out = []
        for image in batch:
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                slot = int(torch.randint(self.size, ()))
                out.append(self.images[slot])
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)


class TorchCycleGAN:
    batch = 16

    def __init__(self):
        torch.manual_seed(0)
        self.g_ab, self.g_ba = resnet_generator(), resnet_generator()
        self.d_a, self.d_b = patch_discriminator(), patch_discriminator()
        generators = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        discriminators = [*self.d_a.parameters(), *self.d_b.parameters()]
        self.g_opt = torch.optim.Adam(generators, 2e-4, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(discriminators, 2e-4, betas=(0.5, 0.999))
        self.pool_a, self.pool_b = HistoryPool(), HistoryPool()
        self.real_a = torch.rand(self.batch, 3, 32, 32) * 2 - 1
        self.real_b = torch.rand(self.batch, 3, 32, 32) * 2 - 1

    def step(self):
        a, b = self.real_a, self.real_b
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        adversarial = (self.d_b(fake_b) - 1).square().mean() + (self.d_a(fake_a) - 1).square().mean()
        cycle = (self.g_ba(fake_b) - a).abs().mean() + (self.g_ab(fake_a) - b).abs().mean()
        TorchTwin.update(self.g_opt, adversarial + 10 * cycle)
        fake_a, fake_b = self.pool_a(fake_a.detach()), self.pool_b(fake_b.detach())
        d_loss = 0.5 * ((self.d_a(a) - 1).square().mean() + self.d_a(fake_a).square().mean()) + 0.5 * (
            (self.d_b(b) - 1).square().mean() + self.d_b(fake_b).square().mean())
        TorchTwin.update(self.d_opt, d_loss)
        return d_loss.item()

    def rate(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return self.batch * steps / (time.perf_counter() - start)


def cpu_flags():
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
    return " ".join(flag for flag in wanted if f" {flag}" in flags)


TWINS = {"dcgan": TorchDCGAN, "wgan_gp": TorchWGANGP, "cyclegan": TorchCycleGAN}


XLA_CHOICES = {"off": [False], "on": [True], "both": [False, True]}


def compare(name, rounds, steps, xla="both"):
    """Alternating rounds of ganzoo's entry (without and/or with XLA) and its
    twin: `{"ganzoo": [...], "ganzoo_xla": [...], "torch": [...]}` images/s."""
    import tensorflow as tf

    import ganzoo
    from run import StepClock, batch_of

    twin_model = TWINS[name]()
    batch = getattr(twin_model, "batch", BATCH)
    # The twins are the plain networks: no EMA, augmentation or self-conditioning (cyclegan has none).
    stabilisers = {} if name == "cyclegan" else {"ema_decay": None, "augment": None, "clusters": 0}
    for _ in range(2):
        twin_model.step()  # warm-up
    clock = StepClock()
    rates = {}
    for jit in XLA_CHOICES[xla]:
        model = ganzoo.load(name, **stabilisers, jit_compile=jit, seed=0)
        data = tf.data.Dataset.from_tensors(batch_of(model, batch)).repeat()
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace (and compile)

        def rate(model=model, data=data):
            model.fit(data, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=[clock])
            return batch * steps / (clock.times[-1] - clock.times[0])  # from the end of the first step

        rates["ganzoo_xla" if jit else "ganzoo"] = rate
    rates["torch"] = lambda: twin_model.rate(steps)
    results = {who: [] for who in rates}
    for _ in range(rounds):
        for who, rate in rates.items():
            results[who].append(rate())
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=list(TWINS), choices=list(TWINS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per round (wgan_gp: a step is 5 critic updates)")
    parser.add_argument("--xla", choices=list(XLA_CHOICES), default="both",
                        help="ganzoo without XLA, with it, or both in the same alternation (default)")
    parser.add_argument("--json")
    args = parser.parse_args()

    import tensorflow as tf

    from run import matmul_gflops

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    ceiling = matmul_gflops()
    print(f"CPU flags: {cpu_flags()}; {threads} threads; float32 matmul {ceiling:.0f} GFLOP/s; "
          f"TF {tf.__version__}, torch {torch.__version__}")
    report = {"flags": cpu_flags(), "matmul_gflops": ceiling}
    for name in args.entries:
        steps = max(args.steps // 4, 2) if name == "wgan_gp" else args.steps
        results = compare(name, args.rounds, steps, args.xla)
        shape, batch = ("32x32x3", 16) if name == "cyclegan" else ("32x32x1", BATCH)
        print(f"{name} {shape}, batch {batch}, images/s, {args.rounds} alternating rounds of {steps} steps:")
        for who, rates in results.items():
            print(f"  {who:10s} best {max(rates):6.0f}  median {statistics.median(rates):6.0f}  "
                  f"({', '.join(f'{r:.0f}' for r in rates)})")
        ratios = {}
        for who in results:
            if who != "torch":
                ratios[who] = (max(results[who]) / max(results["torch"]),
                               statistics.median(results[who]) / statistics.median(results["torch"]))
                print(f"  {who} / torch: {ratios[who][0]:.2f}x best, {ratios[who][1]:.2f}x median", flush=True)
        report[name] = {**results, "ratios_best_median": ratios}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
