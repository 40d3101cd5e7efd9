"""What the plotting tools share."""
import pathlib


def save_atomically(figure, output):
    """Writes `figure` to `output` (PNG) through a temporary file renamed over it, creating the
    folder, so a reader never sees a half-written picture."""
    figure.tight_layout()
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(output)
