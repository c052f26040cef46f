//! Placeholder: the simulated municipality is being written.
