"""`python -m personagraph`: the `personagraph` command."""

from personagraph.cli import main

main()
