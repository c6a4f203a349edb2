"""One module per scenario of issue #5; each returns a `bench.report.Section`."""
