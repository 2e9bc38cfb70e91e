"""What the user sees: component ids (`ids`), display rendering and colour maps (`render`), pure Plotly figure dicts
(`figures`), reusable components such as heatmap cards (`components`), and the photo route (`photos`).

May import: Dash components, Plotly, numpy, Pillow, `dashboard.config`, `dashboard.state.store` (method metadata and the
store, for the photo route). Never the engine, never callbacks.
"""
