"""The interactive Dash front end of the explainers engine.

Pure helpers (`selection`, `images`, `render`, `figures`, `state`) do the work and are unit-tested directly;
`layout` and `components` build the page; `callbacks/` holds thin Dash wrappers, one module per concern;
`factory.create_app` wires everything together. The package imports the engine lazily through `resources`, so its pure
parts work (and are tested) without loading TensorFlow.
"""
