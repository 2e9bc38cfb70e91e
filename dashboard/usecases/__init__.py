"""The dashboard's use cases over the engine and the state store, free of Dash: a selection explained and stored
(`analysis`), and one explanation exported as a zip (`export`).

May import: `dashboard.inputs`, `dashboard.view.render`, `dashboard.state.store`, `dashboard.config`, and the engine
(through the adapter it is given). Never Dash or callbacks.
"""
