"""Generate the Python code for the protobuf contract into hub/pb.

Usage: python protos/generate.py [--out DIR]

protoc names Python modules after the .proto paths (customs_hub/v1/x.proto ->
customs_hub.v1.x_pb2). The hub ships them inside its own package, so the generated imports are
rewritten from ``customs_hub.v1`` to ``hub.pb.customs_hub.v1``. tests/test_proto_fresh.py runs
this into a temporary folder and fails when the committed code differs.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "hub" / "pb"
PACKAGE_PREFIX = "hub.pb."
_IMPORT = re.compile(r"^(from|import) customs_hub\.", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency, imported only here

    protos = sorted(HERE.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{HERE}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p) for p in protos],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = []
        for src in sorted(Path(tmp).rglob("*.py*")):
            rel = src.relative_to(tmp)
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT.sub(
                lambda m: f"{m.group(1)} {PACKAGE_PREFIX}customs_hub.", src.read_text()
            )
            dst.write_text(text)
            written.append(rel)
    for pkg in {out / r.parent for r in written} | {out / "customs_hub", out}:
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text(
                '"""Generated protobuf code; do not edit (see protos/generate.py)."""\n'
            )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for rel in generate(args.out):
        print(args.out / rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
