"""``python -m proxy.codegen``: regenerate ``proxy/schemas`` from the OpenAPI spec."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy.codegen.coverage import corpus_calls, coverage_table
from proxy.codegen.generate import generate, write
from proxy.codegen.groups import default_groups
from proxy.codegen.loader import load_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "openapi" / "openapi.yaml"
DEFAULT_OUT = REPO_ROOT / "proxy" / "schemas"
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "openai"


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the schema modules; print a summary and the raw fallbacks to stderr."""
    parser = argparse.ArgumentParser(prog="python -m proxy.codegen", description=__doc__)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="OpenAPI YAML file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output package directory")
    parser.add_argument(
        "--spec-nullability",
        action="store_true",
        help="accept null only where the spec allows it (default: also for optional properties)",
    )
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="print the typed-coverage table (Markdown) to stdout instead of writing files",
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus directory")
    args = parser.parse_args(argv)

    spec = load_spec(args.spec)
    output = generate(spec, default_groups(spec), optional_is_nullable=not args.spec_nullability)
    if args.coverage:
        calls = corpus_calls(args.corpus) if args.corpus.is_dir() else []
        sys.stdout.write(coverage_table(spec, output, calls))
        return 0
    written = write(output, args.out)

    err = sys.stderr
    print(f"wrote {len(written)} files to {args.out}", file=err)
    for module, stats in output.stats.items():
        print(f"  {module}: {stats.structs} structs, {stats.aliases} union aliases", file=err)
    print(f"  routes: {output.operations} operations", file=err)
    print(f"raw fallbacks: {len(output.fallbacks)}", file=err)
    for location, reason in output.fallbacks:
        print(f"  {location}: {reason}", file=err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
