"""obliviate: make a language model forget chosen knowledge, and prove it."""

__version__ = "0.1.0"
