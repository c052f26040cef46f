//! A model folder (`models/<name>/<version>/`) with one file replaced by the input: the first
//! byte picks `params.json` (the manifest's fingerprint of it then made to match, so that
//! the input reaches the parameters' validation), `manifest.json` or `catalog.toml`. A folder
//! that loads estimates a fixed needs set without panicking, with finite figures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramtid_core::fingerprint::fnv1a64;
use ramtid_core::model::Model;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Original {
    dir: PathBuf,
    manifest: serde_json::Value,
    files: Vec<(&'static str, Vec<u8>)>,
}

fn original() -> &'static Original {
    static ORIGINAL: OnceLock<Original> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let src = ramtid_fuzz::model_dir();
        let files: Vec<(&'static str, Vec<u8>)> = ["manifest.json", "params.json", "catalog.toml"]
            .into_iter()
            .map(|f| (f, std::fs::read(src.join(f)).unwrap()))
            .collect();
        let manifest = serde_json::from_slice(&files[0].1).unwrap();
        let dir = ramtid_fuzz::scratch().join("nordstad").join("1");
        std::fs::create_dir_all(&dir).unwrap();
        Original {
            dir,
            manifest,
            files,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let o = original();
    for (name, bytes) in &o.files {
        std::fs::write(o.dir.join(name), bytes).unwrap();
    }
    match which % 3 {
        0 => {
            let mut manifest = o.manifest.clone();
            manifest["params_fingerprint"] = format!("fnv64:{:016x}", fnv1a64(body)).into();
            std::fs::write(o.dir.join("params.json"), body).unwrap();
            std::fs::write(
                o.dir.join("manifest.json"),
                serde_json::to_vec(&manifest).unwrap(),
            )
            .unwrap();
        }
        1 => std::fs::write(o.dir.join("manifest.json"), body).unwrap(),
        _ => std::fs::write(o.dir.join("catalog.toml"), body).unwrap(),
    }
    if let Ok(model) = Model::load(&o.dir) {
        ramtid_fuzz::validate_and_estimate(&model, &ramtid_fuzz::example_needs());
        if let Ok(valid) = ramtid_fuzz::example_needs().validate(&model.catalog) {
            ramtid_fuzz::explain_checked(&model, &valid);
        }
    }
});
