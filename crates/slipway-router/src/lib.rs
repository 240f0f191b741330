//! The data plane: weighted, sticky HTTP reverse proxy with counters and drain.
