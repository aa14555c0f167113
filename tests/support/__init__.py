"""What the tests share besides fixtures: accounts, paths, the corpus, uploads, workers, generated files,
a fake OpenAI, free ports, browser helpers. Fixtures live in conftest.py files; helpers are imported
from here, never from a conftest. (The route walker is the app's own: `app.routing`.)

`paths` and `corpus` import no `app` module: the rootdir conftest reads `paths` before it sets the
environment the app is built from.
"""
