"""The web console: static files (plain ES modules, vendored uPlot) served at /console/, a client of the
management API like any other (docs/console.md)."""
