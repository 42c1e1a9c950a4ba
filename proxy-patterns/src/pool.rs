//! A proxying task pool (below).
