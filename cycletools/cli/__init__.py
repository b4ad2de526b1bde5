"""The ``cycletools`` command line: one module per subcommand, heavy imports deferred to run time."""
