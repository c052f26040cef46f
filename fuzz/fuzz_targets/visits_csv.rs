//! `visits.csv` (data contract, section 2) as `ramtid train` reads it: any bytes give a log
//! or one clear error, and every row read is accounted for exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_core::visits::{read_visit_log_from, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let catalog = ramtid_fuzz::small_catalog();
    if let Ok(log) = read_visit_log_from(
        data,
        data.len() as u64,
        "visits.csv",
        catalog,
        &ReadOptions::default(),
    ) {
        assert!(log.report.balances(), "{:?}", log.report);
        assert_eq!(log.table.len() as u64, log.report.rows_used);
    }
});
