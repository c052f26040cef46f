//! One needs object (data contract, section 3) as JSON, as `ramtid estimate --needs` and the
//! history's stored needs read it; where it is accepted, the shipped model estimates it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_core::needs::NeedsSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = serde_json::from_slice::<NeedsSet>(data) {
        ramtid_fuzz::validate_and_estimate(ramtid_fuzz::model(), &set);
    }
});
