//! The Driver trait and the process driver that runs app instances.
