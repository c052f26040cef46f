

catalog.toml
visits.csvnordstad (