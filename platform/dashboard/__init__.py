"""Server-rendered pages: the catalog, suites and their leaderboards, runs."""
