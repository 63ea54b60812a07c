"""Development tooling that ships with the repository checkout, not with the runtime wheel.

`tools.snapshot` builds and serves the bundled offline PxWeb v2 snapshot (the default API for `make demo`,
`regionstat run` and the tests).
"""
