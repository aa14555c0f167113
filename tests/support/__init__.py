"""What the tests share besides fixtures: accounts, uploads, workers, generated files, a fake OpenAI, the
route walker. Fixtures live in conftest.py files; helpers are imported from here, never from a conftest.

Nothing here is imported before the rootdir conftest has set the environment, except `paths`, which
imports no `app` module.
"""
