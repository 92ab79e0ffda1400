"""`obliviate bench tofu`: the TOFU benchmark end to end on its real data (not to be confused with the study
scripts in the repository's bench/ folder).

Files: bench.py (the pipeline and its config), data.py (TOFU's splits and general-knowledge QA), models.py (the
full and retain models, cached), leaderboard.py (rows, the sweep, choosing a method's point), report.py.
"""
