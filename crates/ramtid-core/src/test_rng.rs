//! A small deterministic generator for the unit tests' synthetic logs (xorshift64): the
//! same numbers on every run and platform, without a dependency.

/// `next(m)`: a number in `0..m` from the stream started at `seed` (non-zero).
pub(crate) fn below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |m| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    }
}

/// `next()`: a number in `[0, 1)` with 53 random bits, from the stream started at `seed`.
pub(crate) fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}
