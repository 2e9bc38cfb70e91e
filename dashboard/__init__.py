"""The interactive Dash front end of the explainers engine, in layers (each subpackage's docstring says what it owns
and what it may import; nothing imports upward):

- `config`: the app's frozen configuration.
- `state/`: the server-side store, its plain records (no engine objects), and the process-local resources.
- `inputs/`: images, samples, selection -> region. `view/`: ids, rendering, figures, components, the photo route.
- `usecases/`: a selection explained and stored, an explanation exported.
- `trust/`: the Trust section (its use cases, figures and layout).
- `jobs/`: background-callback managers (threads of the web process, forkserver processes), the Celery + Redis
  scale-out.
- `layout`: the page. `callbacks/`: thin Dash wrappers over the layers above. `factory.create_app`: wires it all.

The engine is imported lazily through `state.resources`, so the pure parts work (and are tested) without loading
TensorFlow.
"""
