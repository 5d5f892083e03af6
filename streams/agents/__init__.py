"""Stage 2: the Faust agents of the worker (thin: the logic lives in streams.engine)."""
