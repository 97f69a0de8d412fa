"""mfmc — My Face, My Choice.

Per-face access rules over a social graph decide who sees a real face; everyone else sees a verified,
quantitatively dissimilar deepfake of a synthetic person.
"""

__version__ = "0.1.0"
