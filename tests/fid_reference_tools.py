"""The reference FID tools' side of the equivalence tests (`test_fid_inception.py`).

Run as its own process: torch's and TensorFlow's native libraries do not
share one process safely (importing torchvision after TensorFlow crashes),
and the tools are meant to be checked as they run for their users.

    python tests/fid_reference_tools.py OUT_DIR

reads `OUT_DIR/images.npz` (uint8 arrays `a` and `b`, [n, h, w, 3]) and the
PNG folder `OUT_DIR/folder`, and writes to OUT_DIR:

- `state_dict.pth` (torch's zip layout) and `state_dict_legacy.pth` (the
  pre-1.6 layout): pytorch-fid's FID Inception with random weights, seeded;
- `reference.npz`: each tool's features, statistics and scores on them.
"""

import sys
from pathlib import Path

import numpy as np
import torch

import pytorch_fid.inception as pytorch_fid_inception
from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path
from cleanfid.resize import make_resizer
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric


def random_fid_inception(seed=0):
    """pytorch-fid's FID Inception (its own block classes) with random weights
    scaled so that activations keep their size through the 94 layers."""
    torch.manual_seed(seed)
    network = pytorch_fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    # As pytorch-fid's fid_inception_v3() patches torchvision's network, without its download.
    for name, block, args in [
        ("Mixed_5b", pytorch_fid_inception.FIDInceptionA, (192, 32)),
        ("Mixed_5c", pytorch_fid_inception.FIDInceptionA, (256, 64)),
        ("Mixed_5d", pytorch_fid_inception.FIDInceptionA, (288, 64)),
        ("Mixed_6b", pytorch_fid_inception.FIDInceptionC, (768, 128)),
        ("Mixed_6c", pytorch_fid_inception.FIDInceptionC, (768, 160)),
        ("Mixed_6d", pytorch_fid_inception.FIDInceptionC, (768, 160)),
        ("Mixed_6e", pytorch_fid_inception.FIDInceptionC, (768, 192)),
        ("Mixed_7b", pytorch_fid_inception.FIDInceptionE_1, (1280,)),
        ("Mixed_7c", pytorch_fid_inception.FIDInceptionE_2, (2048,)),
    ]:
        setattr(network, name, block(*args))
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.8, 1.2)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.05)
                module.bias.uniform_(-0.1, 0.1)
    return network.eval()


def pytorch_fid_model(state_dict_path):
    """pytorch-fid's `InceptionV3` wrapper (its resize and scaling), loading our weights
    where it would download them."""
    state = torch.load(state_dict_path)
    pytorch_fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    block = pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    resized = pytorch_fid_inception.InceptionV3([block]).eval()
    bare = pytorch_fid_inception.InceptionV3([block], resize_input=False, normalize_input=False).eval()
    return resized, bare


def nchw(images):
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


@torch.no_grad()
def pool(model, x):
    return model(x)[0].squeeze(-1).squeeze(-1).numpy().astype("float64")


def main(out):
    out = Path(out)
    torch.set_num_threads(2)
    images = np.load(out / "images.npz")
    network = random_fid_inception()
    state = network.state_dict()
    torch.save(state, out / "state_dict.pth")
    torch.save(state, out / "state_dict_legacy.pth", _use_new_zipfile_serialization=False)
    resized, bare = pytorch_fid_model(out / "state_dict.pth")
    fidelity = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                           feature_extractor_weights_path=str(out / "state_dict.pth"))
    clean = make_resizer("PIL", False, "bicubic", (299, 299))
    results = {}
    for key in ("a", "b"):
        pixels = images[key]
        # pytorch-fid: ToTensor's [0, 1] pixels; it resizes and scales inside.
        results[f"legacy_pytorch_{key}"] = pool(resized, nchw(pixels).float() / 255)
        with torch.no_grad():
            features, logits = fidelity(nchw(pixels))
        results[f"legacy_tensorflow_{key}"] = features.numpy().astype("float64")
        results[f"logits_{key}"] = logits.numpy()
        # clean-fid: its resize, then the TF graph's scaling (x - 128) / 128 into the bare network.
        clean_pixels = np.stack([clean(image) for image in pixels])
        results[f"clean_resized_{key}"] = clean_pixels
        results[f"clean_{key}"] = pool(bare, (nchw(clean_pixels) - 128) / 128)
    for mode in ("legacy_pytorch", "legacy_tensorflow", "clean"):
        a, b = results[f"{mode}_a"], results[f"{mode}_b"]
        results[f"fid_{mode}"] = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                                            b.mean(0), np.cov(b, rowvar=False))
    subset = min(len(images["a"]), len(images["b"])) // 2
    kid = kid_features_to_metric(torch.from_numpy(results["legacy_tensorflow_a"]).float(),
                                 torch.from_numpy(results["legacy_tensorflow_b"]).float(),
                                 kid_subsets=10, kid_subset_size=subset, kid_kernel="poly", kid_kernel_poly_degree=3,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)
    results["kid"] = kid["kernel_inception_distance_mean"]
    results["kid_subset_size"] = subset
    isc = isc_features_to_metric(torch.from_numpy(results["logits_b"]), splits=2)
    results["is"] = isc["inception_score_mean"]
    mu, sigma = compute_statistics_of_path(str(out / "folder"), resized, batch_size=8, dims=2048, device="cpu",
                                           num_workers=0)
    results["folder_mu"], results["folder_sigma"] = mu, sigma
    np.savez(out / "reference.npz", **results)


if __name__ == "__main__":
    main(sys.argv[1])
