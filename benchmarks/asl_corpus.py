"""How many real-world Step Functions machines `stepwell validate` accepts.

    python benchmarks/asl_corpus.py REPOSITORY [-v]

REPOSITORY is a git checkout of machines written elsewhere (the public sample collections of
Step Functions workflows). Every `*.asl.json` / `*.asl.yaml` file, and every JSON file under a
`statemachine` folder, at its HEAD is a candidate; identical files count once, files that are
not a machine (no `States`) not at all. A deploy-time placeholder where a number goes
(`"MaxConcurrency": ${Limit}`) is read as 1; one inside a string stays as written. Prints the
accepted share as JSON, with the most common first problems of the others (`-v`: each file's).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter

from ruamel.yaml import YAML

from stepwell.asl.validation import check
from stepwell.definition.errors import SourceMap

CANDIDATE = re.compile(r"(\.asl\.json|\.asl\.ya?ml)$|statemachine.*\.json$", re.IGNORECASE)
NUMBER_PLACEHOLDER = re.compile(r"(?<=[:\[,]\s)\$\{[^}]+\}")
INTEGRATION = re.compile(r"arn:aws:states:::([a-z0-9-]+:?[A-Za-z0-9.]*).*")


def git(repository: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repository, *args], capture_output=True, text=True, check=True
    ).stdout


def main(repository: str, verbose: bool) -> dict[str, object]:
    seen: set[str] = set()
    accepted = 0
    refused: Counter[str] = Counter()
    for name in git(repository, "ls-tree", "-r", "--name-only", "HEAD").split("\n"):
        if not CANDIDATE.search(name):
            continue
        text = git(repository, "show", f"HEAD:{name}")
        digest = hashlib.sha256(text.encode()).hexdigest()
        try:
            document = YAML(typ="rt").load(NUMBER_PLACEHOLDER.sub("1", text))
        except Exception:  # not JSON or YAML: not a machine
            continue
        if digest in seen or not isinstance(document, dict) or "States" not in document:
            continue
        seen.add(digest)
        problems = check(document, SourceMap(name, document))
        if not problems:
            accepted += 1
            continue
        refused[INTEGRATION.sub(r"\1", problems[0].message)[:70]] += 1
        if verbose:
            print(f"{name}: {problems[0].message[:160]}", file=sys.stderr)
    return {
        "machines": len(seen),
        "accepted": accepted,
        "accepted_pct": round(100 * accepted / max(len(seen), 1), 1),
        "refused_for": dict(refused.most_common(10)),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], "-v" in sys.argv[2:]), indent=1))
