"""`qnnc sweep`: a declarative sweep (a TOML spec) run on Dask's distributed scheduler,
resumably. `spec` reads and validates the spec and expands it into units of work,
`engine` runs them, `unit` is what a worker runs, `report` writes tables and plots.
docs/sweeps.md is the user's reference."""
