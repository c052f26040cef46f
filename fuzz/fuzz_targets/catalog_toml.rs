//! `catalog.toml` (data contract, section 1): from text, as a model folder and the CLI read
//! it, and from a file's bytes, as `--catalog` does. A catalog that is accepted writes back
//! (`to_toml`, what a trained model folder holds) to the same catalog.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_core::catalog::Catalog;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Catalog::from_toml(text, "catalog.toml") {
            let again = Catalog::from_toml(&c.to_toml(), "written")
                .expect("a catalog that was accepted is accepted as written back");
            assert_eq!(again.fingerprint(), c.fingerprint());
        }
    }
    let path = ramtid_fuzz::scratch().join("catalog.toml");
    std::fs::write(&path, data).unwrap();
    let _ = Catalog::load(&path);
});
