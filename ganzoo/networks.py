"""Registry of generator/discriminator pairs, chosen by a model's `network`.

A network builder is `build(latent_dim, data_shape, **network_args)` and
returns `(generator, discriminator)`: two functional `keras.Model`s built from
`keras.Input`, the generator mapping `[batch, latent_dim]` to
`[batch, *data_shape]` and the discriminator mapping that to `[batch, 1]`
unnormalised scores (logits). Families register their builders next to their
GAN class, so `network="mlp"` works for every entry that accepts vectors.

A builder has a kind, which must match the model's `network_kind`:

- `unconditional`: as above.
- `conditional`: also takes `num_classes`; the generator maps `[z, labels]`
  and the discriminator `[samples, labels]`, labels being int32 `[batch]`.
- `translation`: `latent_dim` is None; the generator maps images to images
  of the same shape (CycleGAN builds two pairs).
- `progressive`: both networks also take `progress=` (pggan's growth).
"""

import difflib

_NETWORKS = {}
_KINDS = {}
KINDS = ("unconditional", "conditional", "translation", "progressive")


def register_network(name, kind="unconditional"):
    """Decorator: register a `(latent_dim, data_shape, **kwargs)` builder of `kind`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")

    def decorator(build):
        _NETWORKS[name] = build
        _KINDS[name] = kind
        return build

    return decorator


def features(discriminator):
    """The discriminator's features: the symbolic tensor its last (logit)
    layer reads, which a projection head or InfoGAN's Q reads as well."""
    return discriminator.layers[-1].input


def list_networks(kind=None):
    """Registered names, all or of one kind."""
    return sorted(n for n in _NETWORKS if kind is None or _KINDS[n] == kind)


def kind_of(name):
    return _KINDS.get(name)


def build(name, latent_dim, data_shape, **network_args):
    """Build the `(generator, discriminator)` pair registered as `name`."""
    if name not in _NETWORKS:
        close = difflib.get_close_matches(str(name), _NETWORKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown network {name!r}.{hint} Available: {', '.join(list_networks())}."
        )
    try:
        return _NETWORKS[name](latent_dim, tuple(data_shape), **network_args)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        import inspect

        params = [
            p for p in inspect.signature(_NETWORKS[name]).parameters
            if p not in ("latent_dim", "data_shape", "num_classes")
        ]
        raise ValueError(
            f"network_args {sorted(network_args)} do not fit network {name!r}; "
            f"it accepts: {', '.join(params)}."
        ) from None
