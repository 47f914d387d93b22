"""`python -m personagraph.cli`: the `personagraph` command."""

from personagraph.cli import main

main()
