"""MoCo v3's learning-rate and momentum schedules, computed by the official functions.

Reads `adjust_learning_rate` and `adjust_moco_momentum` out of `main_moco.py` of a checkout of
github facebookresearch/moco-v3 at the pinned commit (only those two functions are executed, so
PyTorch is not needed) and writes their per-iteration values, as `main_moco.py` calls them
(`epoch + i / iters_per_epoch`), to Tests/Fixtures/moco_schedules.json.

    python3 tools/reference/make_moco_schedule_fixture.py /path/to/moco-v3
"""
import ast
import json
import math
import pathlib
import subprocess
import sys
import types

PINNED_COMMIT = "c349e6e24f40d3fedb22d973f92defa4cedf37a7"


def official_functions(checkout):
    commit = subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if commit and commit != PINNED_COMMIT:
        sys.exit(f"{checkout} is at {commit}, not the pinned {PINNED_COMMIT}")
    source = pathlib.Path(checkout, "main_moco.py").read_text()
    tree = ast.parse(source)
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef)
              and node.name in ("adjust_learning_rate", "adjust_moco_momentum")]
    namespace = {"math": math}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), "main_moco.py", "exec"), namespace)
    return namespace["adjust_learning_rate"], namespace["adjust_moco_momentum"]


def main():
    adjust_learning_rate, adjust_moco_momentum = official_functions(sys.argv[1])
    args = types.SimpleNamespace(lr=0.6, warmup_epochs=2, epochs=5, moco_m=0.99)
    iterations_per_epoch = 3

    class Optimizer:
        param_groups = [{}]

    learning_rates, momenta = [], []
    for epoch in range(args.epochs):
        for i in range(iterations_per_epoch):
            learning_rates.append(adjust_learning_rate(Optimizer, epoch + i / iterations_per_epoch, args))
            momenta.append(adjust_moco_momentum(epoch + i / iterations_per_epoch, args))
    fixture = {
        "commit": PINNED_COMMIT, "base_lr": args.lr, "warmup_epochs": args.warmup_epochs, "epochs": args.epochs,
        "iterations_per_epoch": iterations_per_epoch, "moco_m": args.moco_m,
        "learning_rates": learning_rates, "momenta": momenta,
    }
    out = pathlib.Path(__file__).resolve().parents[2] / "Tests/Fixtures/moco_schedules.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
