"""The shared corpus of real books and bad files: `../shared/corpus` beside the repository, wherever it is
cloned. The one place tests and benches find it."""

from tests.support.paths import ROOT

CORPUS = ROOT.parent / "shared" / "corpus"
BOOKS = CORPUS / "books"
BAD = CORPUS / "bad"
