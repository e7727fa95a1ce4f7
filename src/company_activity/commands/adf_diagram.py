"""`company-activity adf-diagram [--check]`: write or check adf/diagram.mmd from the JSON.

    company-activity adf-diagram
    company-activity adf-diagram --check    # exit 1 when adf/diagram.mmd is stale

The diagram is generated from the pipeline JSON under adf/ (--adf-dir), so it cannot drift
from what Data Factory runs; the test suite runs the --check form.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.azure.adf_graph import DIAGRAM_NAME, diagram_for, load_factory
from company_activity.pipeline.names import PIPELINE_NAME

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "adf-diagram",
        help="write adf/diagram.mmd from the Data Factory pipeline JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--adf-dir", default="adf", help="the factory's git folder (default adf)")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 when the diagram is stale"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    factory = load_factory(args.adf_dir)
    text = diagram_for(factory, PIPELINE_NAME)
    target = Path(args.adf_dir) / DIAGRAM_NAME
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current == text:
            print(f"{target} is current")
            return 0
        print(
            f"{target} does not match {PIPELINE_NAME}'s JSON; run `company-activity adf-diagram`",
            file=sys.stderr,
        )
        return 1
    if current == text:
        print(f"{target} is already current")
    else:
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    return 0
