"""Ask a TF Serving REST endpoint (or `ganzoo serve`) for samples and save them.

    python examples/rest_client.py [--url http://127.0.0.1:8501] [--model dcgan] [--n 16] [--out samples.png]

The same code works against TensorFlow Serving and `ganzoo serve`.
"""

import argparse

import numpy as np
import requests
from PIL import Image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--out", default="samples.png")
    args = parser.parse_args(argv)

    # The signature says how long z is: metadata -> serving_default -> inputs -> z.
    metadata = requests.get(f"{args.url}/v1/models/{args.model}/metadata", timeout=30)
    metadata.raise_for_status()
    signature = metadata.json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    latent_dim = int(signature["inputs"]["z"]["tensor_shape"]["dim"][1]["size"])

    z = np.random.default_rng(0).standard_normal((args.n, latent_dim)).round(4).tolist()
    response = requests.post(f"{args.url}/v1/models/{args.model}:predict", json={"inputs": {"z": z}}, timeout=60)
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.json()['error']}")
    images = np.asarray(response.json()["outputs"]["images_uint8"], dtype=np.uint8)  # [n, H, W, C]

    side = int(np.ceil(np.sqrt(len(images))))
    height, width, channels = images.shape[1:]
    grid = np.zeros((side * height, side * width, channels), np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, side)
        grid[row * height:(row + 1) * height, col * width:(col + 1) * width] = image
    Image.fromarray(grid.squeeze(-1) if channels == 1 else grid).save(args.out)
    print(f"Wrote {len(images)} samples from {args.model} to {args.out}")


if __name__ == "__main__":
    main()
