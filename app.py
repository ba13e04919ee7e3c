#!/usr/bin/env python3
"""careflow CDK app: the stacks of one environment, built from the workflow catalog.

    python app.py                      # dev, into cdk.out/ (no CDK CLI needed)
    python app.py -c env=prod          # prod
    npx aws-cdk deploy --all -c env=dev

cdk-nag (AwsSolutions, HIPAA Security) runs as a validation plugin: an unacknowledged
finding fails the synth. See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The runtime library lives in the layer's source tree; make it importable from a clean checkout.
for path in (ROOT / "layers" / "runtime", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from stacks.application import create_app  # noqa: E402


def _context_arguments(argv: list[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="context value, as with the CDK CLI (env=dev|prod, layer_build=pip|skip)",
    )
    parser.add_argument("-o", "--output", default=None, help="cloud assembly (default cdk.out)")
    args = parser.parse_args(argv)
    pairs = [item.split("=", 1) for item in args.context]
    if any(len(pair) != 2 for pair in pairs):
        parser.error("context must be KEY=VALUE")
    context = dict(pairs)
    if args.output:
        context["__outdir"] = args.output
    return context


def main(argv: list[str]) -> None:
    context = _context_arguments(argv)
    # The CLI sets CDK_OUTDIR; run directly, CDK would synthesize into a temporary directory.
    outdir = context.pop("__outdir", None) or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    app, _ = create_app(context, outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1:])
