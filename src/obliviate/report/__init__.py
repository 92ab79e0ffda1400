"""Reports on unlearning: scorecards against the model before and the retain model, before/after tables, charts,
per-entity tables, example generations and attacks, as a self-contained HTML page or as Markdown."""

from obliviate.report.entries import ReportEntry, RunInfo, load_entries
from obliviate.report.write import write_report

__all__ = ["ReportEntry", "RunInfo", "load_entries", "write_report"]
