#!/usr/bin/env python3
"""Checks that the folders of Sources/Core depend on each other in one direction only.

Every folder has a layer; a Swift file may use the types and functions declared in its own
layer and the layers below it, never those of a layer above. A name counts as used when it
appears as a word in the file's code (comments and string literals removed). Prints each
backwards use as `file:line: Folder uses Name from Folder` and exits with status 1 if any.

    python3 tools/check_layers.py            # check
    python3 tools/check_layers.py --graph    # print which folder uses which
"""
import os
import re
import sys

# Lowest first; folders on one line share a layer and may use each other.
LAYERS = [
    ["Tensor"],
    ["Autograd"],
    ["Kernels", "Ops", "Communication", "Files"],
    ["NN"],
    ["Optim", "Data", "Checkpoint"],
    ["Training"],
    ["Eval"],
    ["Session"],
]

CORE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "Core")
DECLARATION = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|open|final|indirect|nonisolated|static)\s+)*"
    r"(?:struct|class|enum|protocol|typealias|actor|func)\s+([A-Za-z_]\w*)")


def code_lines(text):
    """The lines of `text` with comments and string literals blanked."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group()), text, flags=re.S)
    for line in text.split("\n"):
        line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
        yield line.split("//", 1)[0]


def main():
    layer_of = {folder: index for index, folders in enumerate(LAYERS) for folder in folders}
    files = []
    for folder in sorted(os.listdir(CORE)):
        if folder.endswith(".docc"):
            continue  # a documentation catalog: articles, no code
        if folder not in layer_of:
            print(f"Sources/Core/{folder} has no layer in tools/check_layers.py; add it to LAYERS.")
            return 1
        for name in sorted(os.listdir(os.path.join(CORE, folder))):
            if name.endswith(".swift"):
                with open(os.path.join(CORE, folder, name), encoding="utf-8") as handle:
                    files.append((folder, name, list(code_lines(handle.read()))))
    declared = {}
    for folder, _, lines in files:
        for line in lines:
            match = DECLARATION.match(line)
            # Top-level functions only (no indentation); types at any depth are nested in
            # their folder's types, and nested names are reached through them.
            if match and (not line.lstrip().startswith(("func", "public func", "static")) or not line.startswith(" ")):
                if line.startswith(" ") and re.search(r"\bfunc\b", line):
                    continue
                declared.setdefault(match.group(1), set()).add(folder)
    # Names declared in more than one folder are ambiguous by word: skip them.
    owner = {name: next(iter(folders)) for name, folders in declared.items() if len(folders) == 1}
    word = re.compile(r"\b[A-Za-z_]\w*\b")
    problems, graph = [], {}
    for folder, name, lines in files:
        for number, line in enumerate(lines, 1):
            for used in set(word.findall(line)):
                source = owner.get(used)
                if source is None or source == folder:
                    continue
                graph.setdefault(folder, set()).add(source)
                if layer_of[source] > layer_of[folder]:
                    problems.append(f"Sources/Core/{folder}/{name}:{number}: {folder} uses {used} from {source}")
    if "--graph" in sys.argv:
        for folder in sorted(graph, key=lambda f: layer_of[f]):
            print(f"{folder} -> {', '.join(sorted(graph[folder], key=lambda f: layer_of[f]))}")
    for problem in problems:
        print(problem)
    if problems:
        order = " → ".join("/".join(folders) for folders in LAYERS)
        print(f"{len(problems)} backwards dependencies; the layers run {order}.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
