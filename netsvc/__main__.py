# `python -m netsvc` is the `netsvc` command.
from ._cli import main

main()
