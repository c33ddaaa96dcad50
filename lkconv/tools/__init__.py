"""Command-line tools: verify, bench, erf, train, info."""
