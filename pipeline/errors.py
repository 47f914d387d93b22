"""Errors whose message already tells the user what to do; the CLI prints them as one line, exit code 3."""


class UserActionNeeded(RuntimeError):
    """Something outside the program must change (install a package, start a server, set a variable)."""


class NothingToDo(ValueError):
    """The input was fine but the graph cannot give what was asked (e.g. fewer clusters than `count`): nothing was written."""
