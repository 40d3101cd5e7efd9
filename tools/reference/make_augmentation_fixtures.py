"""Writes Tests/Fixtures/augmentations.h5 and Tests/Fixtures/images/*: the torchvision/PIL side of
the data pipeline's cross-check.

Every deterministic augmentation runs on one small test image with fixed parameters, exactly as
torchvision's functional API (PIL backend) or PIL itself computes it, and every test image file is
decoded as `Image.open(path).convert("RGB")`. Run from the repository root:

    pip install -r tools/reference/requirements.txt
    python3 tools/reference/make_augmentation_fixtures.py
"""

import io
import os
import struct
import zlib

import h5py
import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import InterpolationMode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
IMAGES = os.path.join(FIXTURES, "images")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def test_image(height=40, width=48):
    """Smooth colour gradients, a saturated square, a grey stripe and noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 128 + 110 * np.sin(x / 7.0) * np.cos(y / 11.0)
    green = 255 * x / (width - 1)
    blue = 255 * (1 - y / (height - 1))
    image = np.stack([red, green, blue], axis=-1) + rng.normal(0, 12, (height, width, 3))
    image[8:18, 30:42] = (250, 20, 30)
    image[26:30, :] = 128
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def as_float32(value):
    """The value torchvision would hold after sampling it as a float32 tensor element."""
    return float(np.float32(value))


def png_16bit_rgb(pixels16):
    """A 16-bit RGB PNG (PIL cannot write one)."""
    height, width, _ = pixels16.shape
    raw = b"".join(b"\x00" + pixels16[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_image_files(pixels, out):
    """Encodes test files and stores PIL's decoding of each as decoded/<name>."""
    os.makedirs(IMAGES, exist_ok=True)
    rgb = Image.fromarray(pixels, "RGB")
    encoded = {}

    def save(name, image, **options):
        buffer = io.BytesIO()
        image.save(buffer, **options)
        encoded[name] = buffer.getvalue()

    save("baseline.jpg", rgb, format="JPEG", quality=90)
    save("progressive.jpg", rgb, format="JPEG", quality=85, progressive=True)
    save("grey.jpg", rgb.convert("L"), format="JPEG", quality=90)
    save("rgb.png", rgb, format="PNG")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, pixels.shape[1]).astype(np.uint8), (pixels.shape[0], 1)))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    save("rgba.png", rgba, format="PNG")
    save("grey.png", rgb.convert("L"), format="PNG")
    palette = rgb.quantize(colors=16)
    save("palette.png", palette, format="PNG", transparency=3)
    wide = pixels.astype(np.uint16) * 257 + np.arange(pixels.size, dtype=np.uint16).reshape(pixels.shape) % 251
    encoded["rgb16.png"] = png_16bit_rgb(wide)

    for name, data in encoded.items():
        with open(os.path.join(IMAGES, name), "wb") as handle:
            handle.write(data)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        out.create_dataset(f"decoded/{name}", data=decoded)


def main():
    torch.manual_seed(0)
    pixels = test_image()
    image = Image.fromarray(pixels, "RGB")
    path = os.path.join(FIXTURES, "augmentations.h5")
    with h5py.File(path, "w") as out:
        out.attrs["versions"] = f"torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}"
        out.create_dataset("image", data=pixels)

        # RandomResizedCrop's deterministic part: crop box (top, left, height, width) + resize.
        boxes = {"down": ((3, 5, 30, 37), (24, 20)), "up": ((10, 12, 14, 11), (32, 29)), "mixed": ((0, 0, 40, 48), (56, 21))}
        for name, (box, size) in boxes.items():
            out.create_dataset(f"resized_crop/{name}/box", data=np.array(box, dtype=np.int64))
            out.create_dataset(f"resized_crop/{name}/size", data=np.array(size, dtype=np.int64))
            for mode, interpolation in (("bilinear", InterpolationMode.BILINEAR), ("bicubic", InterpolationMode.BICUBIC)):
                result = F.resized_crop(image, *box, list(size), interpolation)
                out.create_dataset(f"resized_crop/{name}/{mode}", data=np.asarray(result))

        out.create_dataset("flip", data=np.asarray(F.hflip(image)))
        operations = {
            "brightness": (F.adjust_brightness, [0.65, 1.3]),
            "contrast": (F.adjust_contrast, [0.7, 1.35]),
            "saturation": (F.adjust_saturation, [0.8, 1.15]),
            "hue": (F.adjust_hue, [-0.07, 0.05, 0.1]),
        }
        for name, (function, factors) in operations.items():
            factors = [as_float32(factor) for factor in factors]
            out.create_dataset(f"{name}/factors", data=np.array(factors, dtype=np.float64))
            out.create_dataset(f"{name}/outputs", data=np.stack([np.asarray(function(image, f)) for f in factors]))

        out.create_dataset("grayscale", data=np.asarray(F.rgb_to_grayscale(image, num_output_channels=3)))
        radii = [0.4, 1.3, 2.0]
        out.create_dataset("blur/radii", data=np.array(radii))
        out.create_dataset(
            "blur/outputs", data=np.stack([np.asarray(image.filter(ImageFilter.GaussianBlur(radius=r))) for r in radii]))
        out.create_dataset("solarize", data=np.asarray(ImageOps.solarize(image, threshold=128)))
        out.create_dataset("normalize", data=F.normalize(F.to_tensor(image), MEAN, STD).numpy())

        # An HDF5 image dataset: colour and grey variants, labels, and a malformed (rank-2) one.
        rng = np.random.default_rng(1)
        out.create_dataset("dataset/images", data=rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8))
        out.create_dataset("dataset/grey_images", data=rng.integers(0, 256, (5, 6, 7, 1), dtype=np.uint8))
        out.create_dataset("dataset/labels", data=np.array([3, 1, 4, 1, 5], dtype=np.int64))
        out.create_dataset("dataset/flat", data=rng.integers(0, 256, (5, 42), dtype=np.uint8))

        write_image_files(pixels, out)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and {IMAGES}")


if __name__ == "__main__":
    main()
