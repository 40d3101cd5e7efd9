#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with the `tensorboard` package's own reader and checks
that every scalar equals the run's metrics.jsonl (as float32) and every image decodes.

    pip install tensorboard pillow && python3 tools/tensorboard/check_events.py runs/main

Exits 1 naming the first difference.
"""
import io
import json
import math
import pathlib
import struct
import sys

from PIL import Image
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def main():
    folder = pathlib.Path(sys.argv[1])
    expected = {}
    for number, line in enumerate((folder / "metrics.jsonl").read_text().splitlines(), start=1):
        record = json.loads(line)
        for key, value in record.items():
            if key in ("step", "epoch") or value is None or not math.isfinite(value):
                continue
            expected[(record["step"], key)] = float32(value)
    found, images = {}, 0
    files = sorted(folder.glob("events.out.tfevents.*"))
    if not files:
        sys.exit(f"{folder}: no events.out.tfevents.* file")
    for path in files:
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.HasField("image"):
                    picture = Image.open(io.BytesIO(value.image.encoded_image_string))
                    if picture.size != (value.image.width, value.image.height):
                        sys.exit(f"{path}: image {value.tag} is {picture.size}, the summary says "
                                 f"{value.image.width}x{value.image.height}")
                    images += 1
                elif value.HasField("simple_value"):
                    key = (event.step, value.tag)
                    if key in found:
                        sys.exit(f"{path}: step {event.step} of {value.tag} appears twice")
                    found[key] = value.simple_value
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        sys.exit(f"metrics.jsonl has {len(missing)} values the events lack, e.g. step {missing[0][0]} {missing[0][1]}")
    if extra:
        sys.exit(f"the events have {len(extra)} values metrics.jsonl lacks, e.g. step {extra[0][0]} {extra[0][1]}")
    for key, value in expected.items():
        if found[key] != value:
            sys.exit(f"step {key[0]} {key[1]}: events {found[key]}, metrics.jsonl {value}")
    print(f"{len(found)} scalars equal metrics.jsonl; {images} images decode ({', '.join(p.name for p in files)})")


if __name__ == "__main__":
    main()
