"""The zoo's entries. Importing a family module registers its entry and networks."""

from ganzoo.models import cgan, cyclegan, dcgan, pggan, vanilla, wgan  # noqa: F401
from ganzoo.models.base import GAN  # noqa: F401
