//! The server's configuration file (`ramtid serve --config`): any file gives a validated
//! configuration or an error, and a validated one can be used without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_server::config::{Config, Sources};

fuzz_target!(|data: &[u8]| {
    let path = ramtid_fuzz::scratch().join("ramtid.toml");
    std::fs::write(&path, data).unwrap();
    let sources = Sources {
        file: Some(path),
        overrides: Vec::new(),
        environment: false,
    };
    if let Ok(cfg) = Config::load(&sources) {
        let _ = cfg.listen_addr();
        let _ = cfg.metrics_addr();
        let _ = cfg.tokens();
        let _ = cfg.training.limits();
        let _ = cfg.audit_path();
        let _ = cfg.history_url();
    }
});
