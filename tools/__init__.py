# Scripts run by hand from the repository root (`python -m tools.NAME`), not part of the
# installed package: tools.fuzz throws mutated inputs at a real server.
