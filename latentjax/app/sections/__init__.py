"""The demo report's sections, one module per topic: ``section(run, *, quick) -> report.Section``."""
