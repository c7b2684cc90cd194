"""The benchmark catalog: benchmarks, versioned tasks, curated suites, methods, backbones."""
