//! A needs file (one object, or one per line: `needs.jsonl`) as `ramtid estimate --needs`
//! reads it; every object it accepts is estimated with the shipped model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_core::needs::parse_needs_file;

fuzz_target!(|data: &[u8]| {
    let Ok(lines) = parse_needs_file(data) else {
        return;
    };
    let mut last = 0;
    for (line, set) in lines {
        assert!(line > last, "line numbers increase");
        last = line;
        if let Ok(set) = set {
            ramtid_fuzz::validate_and_estimate(ramtid_fuzz::model(), &set);
        }
    }
});
