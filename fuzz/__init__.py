"""Coverage-guided fuzzing of signgate's parsers (``scripts/fuzz``; not part of ``scripts/test``).

``fuzz/targets/`` holds one module per parser family; each defines ``ACCEPTED`` (the parser's
documented error types: anything else it raises is a crash) and ``run(data)``, which feeds one
input to the parsers. ``fuzz/corpus/<target>/`` holds the seed inputs, made from real signatures,
manifests, reviews and policies by ``fuzz/make_corpus.py``. ``fuzz/run.py`` drives atheris
(libFuzzer) over every target; ``tests/unit/test_fuzz_targets.py`` runs each target on its seeds in
the default test suite, so the targets cannot rot.
"""
