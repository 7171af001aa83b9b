"""One module per parser family; see `fuzz.harness` for the contract."""
