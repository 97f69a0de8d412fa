"""Optional backends, used only when their model files are found on disk (never downloaded)."""
