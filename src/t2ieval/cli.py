"""The ``t2ieval`` command line."""

from __future__ import annotations

import typer

from t2ieval.runtime import setup_logging

app = typer.Typer(help="t2ieval: pairwise, explainable evaluation of text-to-image models.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging("DEBUG" if verbose else None)


@app.command()
def version() -> None:
    """Print the installed t2ieval version."""
    from t2ieval import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
