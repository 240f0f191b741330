//! The Store trait and its SQLite implementation, with versioned migrations.
