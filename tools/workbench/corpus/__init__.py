"""The training corpus: texts → teacher and extra speakers → wavs, metadata and a data card (tools/make_corpus.py)."""
