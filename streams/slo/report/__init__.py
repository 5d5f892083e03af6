"""The contract-period SLA report (``callslo report``): interval records in, HTML, CSV and a
JSON summary per tenant and queue out. See docs/report.md."""
