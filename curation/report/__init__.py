"""Run inspection: `videorft inspect` in the terminal and a self-contained HTML report.

- `inspect_rows`, `format_rows`, `inspect_sample`, `format_sample` (curation/report/inspect.py)
- `write_report` (curation/report/html.py)
"""

from curation.report.html import write_report
from curation.report.inspect import format_rows, format_sample, inspect_rows, inspect_sample

__all__ = ["format_rows", "format_sample", "inspect_rows", "inspect_sample", "write_report"]
