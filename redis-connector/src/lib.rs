//! redis connector (placeholder).
