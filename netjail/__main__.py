"""`python -m netjail`: the `netjail` command (the Python API runs it this way, with the same interpreter)."""

from netjail.cli import main

main()
