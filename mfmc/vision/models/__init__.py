"""Model files vendored with mfmc (see LICENSE-*.txt beside them and MODELS.md)."""
