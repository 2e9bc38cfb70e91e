"""The Trust section, a vertical slice: which explanation to believe. Its use cases over the engine's metrics and the
state store (`metrics`), its pure figures (`figures`) and its layout (`layout`).

May import: `dashboard.usecases`, `dashboard.view`, `dashboard.state.store`, `dashboard.config`; the engine only inside
`metrics`. Never callbacks.
"""
