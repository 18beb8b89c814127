"""The bad-input corpus: cases.yaml, its fixtures (make_corpus.py) and runner (runner.py)."""
