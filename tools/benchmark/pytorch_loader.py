"""The torchvision + PIL side of `ssl-bench loader`: SelfPatch's multi-crop recipe (2 x 224 + 8 x 96,
as DINO's DataAugmentationDINO with SelfPatch's scales) on a 500x375 JPEG, decode included, in
images/s on one thread (the figure the Swift loader is compared with).

    python3 tools/benchmark/pytorch_loader.py [--image tools/benchmark/loader-500x375.jpg] [--images 200]

Without an existing --image file, writes the deterministic synthetic test photo that
`ssl-bench loader` reads by default (a textured 500x375 scene, JPEG quality 90).
"""

import argparse
import os
import random
import time

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms

DEFAULT_IMAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loader-500x375.jpg")


class GaussianBlur:
    """DINO's blur: PIL GaussianBlur with radius ~ U(0.1, 2.0), applied with probability p."""

    def __init__(self, p=0.5, radius_min=0.1, radius_max=2.0):
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img):
        if random.random() > self.prob:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.radius_min, self.radius_max)))


class Solarization:
    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


class SelfPatchAugmentation:
    """dino:main_dino.py DataAugmentationDINO with SelfPatch's scales (0.25-1 global, 0.05-0.25 local)."""

    def __init__(self, global_scale=(0.25, 1.0), local_scale=(0.05, 0.25), local_count=8):
        flip_and_color_jitter = transforms.Compose([
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
        ])
        normalize = transforms.Compose([
            transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        bicubic = transforms.InterpolationMode.BICUBIC
        self.global_1 = transforms.Compose([
            transforms.RandomResizedCrop(224, scale=global_scale, interpolation=bicubic),
            flip_and_color_jitter, GaussianBlur(1.0), normalize])
        self.global_2 = transforms.Compose([
            transforms.RandomResizedCrop(224, scale=global_scale, interpolation=bicubic),
            flip_and_color_jitter, GaussianBlur(0.1), Solarization(0.2), normalize])
        self.local_count = local_count
        self.local = transforms.Compose([
            transforms.RandomResizedCrop(96, scale=local_scale, interpolation=bicubic),
            flip_and_color_jitter, GaussianBlur(p=0.5), normalize])

    def __call__(self, image):
        return [self.global_1(image), self.global_2(image)] + [self.local(image) for _ in range(self.local_count)]


class RepeatedFile(torch.utils.data.Dataset):
    """`count` samples that all decode the same file (torchvision's pil_loader)."""

    def __init__(self, path, count, transform):
        self.path, self.count, self.transform = path, count, transform

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        with open(self.path, "rb") as handle:
            image = Image.open(handle).convert("RGB")
        return self.transform(image), 0


def write_test_photo(path):
    """A deterministic textured scene: sky gradient, hills, blobs of colour and sensor noise."""
    rng = np.random.default_rng(2024)
    height, width = 375, 500
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    image[..., 0] = 90 + 60 * y / height
    image[..., 1] = 140 + 50 * y / height
    image[..., 2] = 230 - 80 * y / height
    horizon = 220 + 25 * np.sin(x / 55.0) + 12 * np.sin(x / 13.0)
    ground = y > horizon
    texture = 20 * np.sin(x / 3.1 + y / 5.3) * np.cos(y / 2.7)
    image[ground] = np.stack([70 + texture, 120 + texture, 40 + 0.5 * texture], axis=-1)[ground]
    for _ in range(25):
        cy, cx, radius = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(8, 45)
        blob = (y - cy) ** 2 + (x - cx) ** 2 < radius ** 2
        image[blob] = rng.uniform(0, 255, 3) + 15 * np.sin(x[blob] / 4.0)[:, None]
    image += rng.normal(0, 6, image.shape)
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB").save(path, quality=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--images", type=int, default=200, help="timed images (after 10 warm-up images)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (0: in the main thread)")
    arguments = parser.parse_args()
    if not os.path.exists(arguments.image):
        write_test_photo(arguments.image)
    torch.set_num_threads(1)
    random.seed(0)
    torch.manual_seed(0)
    dataset = RepeatedFile(arguments.image, arguments.images + 10, SelfPatchAugmentation())
    if arguments.workers == 0:
        loader = (dataset[index] for index in range(len(dataset)))
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=arguments.workers)
    start = None
    for index, _ in enumerate(loader):
        if index == 9:
            start = time.perf_counter()
    elapsed = time.perf_counter() - start
    print(f"torchvision + PIL, SelfPatch 2x224 + 8x96 from {os.path.basename(arguments.image)}, "
          f"{'1 thread' if arguments.workers == 0 else f'{arguments.workers} workers'}: "
          f"{arguments.images / elapsed:.1f} images/s")


if __name__ == "__main__":
    main()
