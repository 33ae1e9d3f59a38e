"""`nnrun schema`: the config's JSON Schema, for editors."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nnrun.cli.common import app, examples, handle_errors, out


@app.command(epilog=examples("nnrun schema --out nnrun.schema.json",
                             "nnrun schema | jq '.properties | keys'"))
@handle_errors
def schema(out_file: Path | None = typer.Option(None, "--out", help="Write it to this file instead of stdout.")):
    """Print the JSON Schema of an experiment file, for editors.

    Completion, descriptions and checking while you type, in any editor that reads JSON Schema.
    VS Code's YAML extension: put `# yaml-language-server: $schema=nnrun.schema.json` at the top
    of the config."""
    from nnrun.fileio import write_json
    from nnrun.schema import build_schema

    doc = build_schema()
    if out_file is None:
        out.print(json.dumps(doc, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    write_json(out_file, doc)
    out.print(f"{out_file}: the JSON Schema of an nnrun experiment file", markup=False, soft_wrap=True)
