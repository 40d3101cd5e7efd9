"""The official DINO and SelfPatch code the PyTorch anchors import, at pinned commits.

None of their code is in this repository. `fetch` puts the few files the benchmark imports under
runs/bench/official/<name> (runs/ is not committed), checked out at the pinned commit from GitHub
or from a local clone or bare mirror; `official_step.py` refuses to run unless the checkout is at
the pinned commit with those files unmodified.

    python3 tools/benchmark/official.py fetch                       # from GitHub
    python3 tools/benchmark/official.py fetch --dino-source /path/to/dino.git \\
        --selfpatch-source /path/to/SelfPatch.git                  # from local clones or mirrors
    python3 tools/benchmark/official.py check                       # exit status 0 when both are in place

Import shims (`import_official`), used only when the real package cannot be imported, each
reported in the RESULT line (`stubs=`):
- `torchvision`: main_dino.py and main_selfpatch.py import `datasets`, `transforms` and `models`
  at module level, for their data loading and their --arch choices only; none of it is used by a
  training step. The stub is a package with those three empty submodules. (Needed where the only
  torchvision wheel available is one built for another torch, e.g. a CUDA torchvision beside the
  CPU torch: its extension fails to load.)
- `timm.data.constants`: selfpatch_vision_transformer.py imports IMAGENET_DEFAULT_MEAN/STD from
  it (unused by the model); timm's `data` package imports torchvision, so without torchvision the
  two constants are provided with timm's values.
Nothing else is replaced: DINO's `utils.MultiCropWrapper`, `get_params_groups`, `clip_gradients`,
`cancel_gradients_last_layer`, `vision_transformer.vit_tiny`, `DINOHead`, `main_dino.DINOLoss`,
SelfPatch's `vit_tiny`, `SelfPatchHead`, `DINOHead`, `main_selfpatch.MultiCropWrapper` and
`main_selfpatch.DINOLoss` run as published. Their losses call `torch.distributed.all_reduce`,
so the step initialises a one-process gloo group (what a one-GPU DINO run has, minus CUDA).
"""
import argparse
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_DIR = ROOT / "runs" / "bench" / "official"

# name: (GitHub repository, pinned commit, files the benchmark imports)
PINS = {
    "dino": ("https://github.com/facebookresearch/dino",
             "7c446df5b9f45747937fb0d72314eb9f7b66930a",
             ["main_dino.py", "utils.py", "vision_transformer.py"]),
    "selfpatch": ("https://github.com/alinlab/SelfPatch",
                  "81aef149fa984a32bdbb2cf5a98aa0e072591535",
                  ["main_selfpatch.py", "utils.py", "selfpatch_vision_transformer.py"]),
}


def default_checkout(name: str) -> Path:
    return OFFICIAL_DIR / name


def _git(directory: Path, *arguments: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *arguments], check=True, capture_output=True,
                          text=True).stdout.strip()


def problem(name: str, directory: Path):
    """Why `directory` is not the pinned checkout of `name`, or None when it is."""
    url, commit, files = PINS[name]
    fix = f"run `python3 tools/benchmark/official.py fetch` (or check out {url} at {commit} there)"
    if not (directory / ".git").exists():
        return f"{directory} is not a git checkout of {url}; {fix}"
    try:
        head = _git(directory, "rev-parse", "HEAD")
    except subprocess.CalledProcessError as error:
        return f"{directory}: git rev-parse HEAD failed ({error.stderr.strip()}); {fix}"
    if head != commit:
        return f"{directory} is at commit {head}, but the benchmark is pinned to {name} {commit}; {fix}"
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        return f"{directory} lacks {', '.join(missing)}; {fix}"
    changed = _git(directory, "status", "--porcelain", "--", *files)
    if changed:
        return f"{directory}: the imported files differ from commit {commit}:\n{changed}\n{fix}"
    return None


def require(name: str, directory: Path) -> Path:
    """`directory`, after checking it holds the pinned commit; exits with the reason otherwise."""
    reason = problem(name, directory)
    if reason:
        sys.exit(f"official {name} code: {reason}")
    return directory


def fetch(name: str, source: str, directory: Path) -> None:
    """Clones `source` without a work tree and checks out only the imported files at the pin."""
    url, commit, files = PINS[name]
    if problem(name, directory) is None:
        print(f"{name}: {directory} already at {commit}")
        return
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--no-checkout", source, str(directory)], check=True)
    # Index and HEAD at the pin without a full checkout (large assets need not be present),
    # then only the imported files in the work tree.
    _git(directory, "reset", "-q", commit)
    _git(directory, "checkout", commit, "--", *files)
    reason = problem(name, directory)
    if reason:
        sys.exit(f"fetch {name}: {reason}")
    print(f"{name}: {directory} at {commit} ({', '.join(files)})")


def _drop_modules(prefix: str) -> None:
    for module in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[module]


def _stub_torchvision() -> str:
    try:
        import torchvision  # noqa: F401
        return ""
    except Exception as error:  # ImportError, or a wheel built for another torch (RuntimeError, OSError)
        _drop_modules("torchvision")
        package = types.ModuleType("torchvision")
        package.__path__ = []
        package.__doc__ = f"Stand-in installed by tools/benchmark/official.py: {type(error).__name__}: {error}"
        for part in ("datasets", "transforms", "models"):
            module = types.ModuleType(f"torchvision.{part}")
            setattr(package, part, module)
            sys.modules[module.__name__] = module
        sys.modules["torchvision"] = package
        print(f"note: torchvision stubbed ({type(error).__name__}: {str(error).splitlines()[0]})", file=sys.stderr)
        return "torchvision"


def _stub_timm_constants() -> str:
    try:
        from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD  # noqa: F401
        return ""
    except Exception as error:
        _drop_modules("timm")
        names = ["timm", "timm.data", "timm.data.constants"]
        modules = {n: types.ModuleType(n) for n in names}
        modules["timm"].__path__ = []
        modules["timm.data"].__path__ = []
        modules["timm"].data = modules["timm.data"]
        modules["timm.data"].constants = modules["timm.data.constants"]
        modules["timm.data.constants"].IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
        modules["timm.data.constants"].IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
        sys.modules.update(modules)
        print(f"note: timm.data.constants stubbed ({type(error).__name__}: {str(error).splitlines()[0]})",
              file=sys.stderr)
        return "timm.data.constants"


def import_official(name: str, directory: Path) -> list:
    """Puts the pinned checkout first on sys.path and installs the shims it needs; returns the
    names of the shims installed."""
    require(name, directory)
    stubs = [_stub_torchvision()]
    if name == "selfpatch":
        stubs.append(_stub_timm_constants())
    sys.path.insert(0, str(directory))
    return [s for s in stubs if s]


def init_single_process_group() -> None:
    """A one-process gloo group, for the official losses' `dist.all_reduce` of the centres."""
    import atexit
    import tempfile

    import torch.distributed as dist
    if not dist.is_initialized():
        folder = tempfile.mkdtemp(prefix="official-step-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=0, world_size=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_parser = sub.add_parser("fetch", help="clone the pinned commits into runs/bench/official/")
    fetch_parser.add_argument("--dino-source", default=PINS["dino"][0])
    fetch_parser.add_argument("--selfpatch-source", default=PINS["selfpatch"][0])
    sub.add_parser("check", help="exit 0 when both checkouts are at their pins")
    arguments = parser.parse_args()
    if arguments.command == "fetch":
        fetch("dino", arguments.dino_source, default_checkout("dino"))
        fetch("selfpatch", arguments.selfpatch_source, default_checkout("selfpatch"))
    else:
        reasons = [r for r in (problem(n, default_checkout(n)) for n in PINS) if r]
        for reason in reasons:
            print(reason, file=sys.stderr)
        sys.exit(1 if reasons else 0)


if __name__ == "__main__":
    main()
