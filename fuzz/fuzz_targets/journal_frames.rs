//! The history journal's segment file as replay after a crash reads it. The first byte
//! says whether the frames' checks are first made to pass (so that the input reaches the
//! payload decoder); damage is reported at an offset inside the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_history::fuzzing::{replay_segment, seal_frames};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if mode & 1 == 1 {
        seal_frames(&mut bytes);
    }
    if let Ok((_, Some(offset))) = replay_segment(&bytes) {
        assert!(
            offset <= bytes.len(),
            "damage at {offset} of {}",
            bytes.len()
        );
    }
});
