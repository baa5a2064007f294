"""The zoo's model classes. Importing a family module registers its Keras
classes and its networks; the entries themselves are the YAML files of
`zoo_configs/`, which name these classes."""

from ganzoo.models import cgan, cyclegan, dcgan, pggan, resnet, sngan, vanilla, wgan  # noqa: F401
from ganzoo.models.base import GAN, AdversarialModel  # noqa: F401
