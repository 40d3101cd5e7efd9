#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with the `tensorboard` package's own reader and checks
that every scalar equals the run's metrics.jsonl (and the probes of summary.json), as float32,
each step of each tag once, and that every image decodes at the size its summary states.

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
from tensorboard.util import tensor_util


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
    # `ssl-run eval` adds its probes as eval/<network>/<probe> at the run's last step.
    summary = folder / "summary.json"
    if summary.exists():
        last = max((step for step, _ in expected), default=0)
        for key, value in json.loads(summary.read_text()).get("metrics", {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                expected[(last, f"eval/{key}")] = float32(value)
    found, images = {}, 0
    files = sorted(folder.glob("events.out.tfevents.*"))
    if not files:
        sys.exit(f"{folder}: no events.out.tfevents.* file")
    for path in files:
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                # The loader migrates legacy summaries to tensors with a plugin name.
                plugin = value.metadata.plugin_data.plugin_name
                if value.HasField("image") or plugin == "images":
                    if value.HasField("image"):
                        png, size = value.image.encoded_image_string, (value.image.width, value.image.height)
                    else:
                        width, height, png = value.tensor.string_val[:3]
                        size = (int(width), int(height))
                    picture = Image.open(io.BytesIO(png))
                    if picture.size != size:
                        sys.exit(f"{path}: image {value.tag} is {picture.size}, the summary says {size[0]}x{size[1]}")
                    images += 1
                elif value.HasField("simple_value") or plugin == "scalars":
                    key = (event.step, value.tag)
                    if key in found:
                        sys.exit(f"{path}: step {event.step} of {value.tag} appears twice")
                    found[key] = (value.simple_value if value.HasField("simple_value")
                                  else float(tensor_util.make_ndarray(value.tensor)))
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
