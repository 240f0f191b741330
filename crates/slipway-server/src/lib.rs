//! The HTTP API, authentication and event stream of the control plane.
