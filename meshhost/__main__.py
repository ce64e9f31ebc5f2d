"""``python -m meshhost`` and the ``meshhost`` command (pyproject's entry point).

Ctrl-C exits 130 without a traceback from the first line on: the CLI takes
a moment to import, and a KeyboardInterrupt then would be a traceback.
"""

import sys


def run() -> None:
    """Run the CLI; a Ctrl-C while it is still importing exits 130 quietly."""
    try:
        from meshhost.cli import main
    except KeyboardInterrupt:
        sys.exit(130)  # 128 + SIGINT, as meshhost.cli.output.exit_by_signal
    main()


if __name__ == "__main__":
    run()
