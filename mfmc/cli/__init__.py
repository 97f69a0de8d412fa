"""The `mfmc` command line: thin commands over the library."""
