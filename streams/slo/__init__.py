"""Service-level consumers of the engine's output: objectives, alerts, staffing, reports."""
