#!/usr/bin/env python3
"""Issue 13's regression tests, checked by mutation: each entry below reverts one fix with a
minimal edit; the driver applies it, runs the tests that cover the finding (which must now
FAIL), and puts the file back (git checkout), whatever happens.

    tests/mutations/issue13.sh            # every mutation, one at a time (hours: one build each)
    tests/mutations/issue13.sh C5 S3      # some of them
    tests/mutations/issue13.sh --list

Exit status 0 when every test of every mutation run failed, 1 when one passed (a test that
does not catch its finding), 2 on bad arguments or a tree with changes to the files touched.
The results, with the start of each failure message, are printed; the table in
training/reports/issue13-regressions.md was made this way (batched: disjoint mutations in one build).
"""
import os
import re
import subprocess
import sys

M = []
def m(id, finding, file, where, old, new, tests, note="", more=()):
    M.append(dict(id=id, finding=finding, where=where, edits=[(file, old, new)] + list(more), tests=tests, note=note))

CORE="crates/ramtid-core/src/"
SRV="crates/ramtid-server/src/"

# ---- 1: reads outside the data directory / errors quoting contents
m("C1", "1 symlink race (check-then-open)", CORE+"datadir.rs", "DataDir::open_file_with",
"""        let fd = match strategy {
            Strategy::Best => match open_beneath(&self.fd, &rel) {
                Err(e) if openat2_missing(&e) => open_per_component(&self.fd, &rel),
                other => other,
            },
            Strategy::PerComponent => open_per_component(&self.fd, &rel),
        }
        .map_err(|e| explain(raw, e))?;""",
"""        let _ = strategy;
        let full = self.path.join(&rel);
        let errno = |e: std::io::Error| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO);
        let fd: OwnedFd = (|| {
            let meta = std::fs::symlink_metadata(&full).map_err(errno)?;
            if meta.file_type().is_symlink() {
                return Err(rustix::io::Errno::LOOP);
            }
            std::fs::File::open(&full).map(OwnedFd::from).map_err(errno)
        })()
        .map_err(|e| explain(raw, e))?;""",
[("core","datadir::tests::files_inside_open_links_and_escapes_do_not"),
 ("it","train_limits::a_file_swapped_for_a_link_is_never_followed"),
 ("it","train_worker::a_file_swapped_for_a_link_outside_is_never_read")],
"path checked with lstat, then opened by path (follows a link swapped in between)")

m("C2", "1 errors quote file contents (catalog)", CORE+"catalog.rs", "Catalog::from_toml",
"""                reason: crate::redact::reason(e.message()),""",
"""                reason: e.to_string(),""",
[("core","catalog::tests::a_parse_error_does_not_quote_the_file"),
 ("it","train_limits::a_broken_catalog_is_reported_by_position_without_its_text"),
 ("it","train_worker::the_audit_log_and_other_files_never_come_back_in_an_error")],
"toml's own message (quotes the source line) instead of position + redacted reason")

m("C3", "1 errors quote file contents (visit log refusal)", CORE+"visits/reader.rs", "malformed",
"""        reason: crate::redact::reason(&first.reason),""",
"""        reason: first.reason.clone(),""",
[("it","visit_log::a_refused_file_is_described_by_position_not_by_its_cells")],
"the first reject's reason (quotes the cell) passed on unredacted")

m("S11", "1 the audit log read as training input", SRV+"models.rs", "confine",
"""            if same(&opened, &log) {""",
"""            if false && same(&opened, &log) {""",
[("server","models::tests::the_audit_log_is_not_training_input")],
"the audit log's inode check skipped")

# ---- 2: panics
m("C4", "2 panic: byte-offset slicing of check-in", CORE+"visits/time.rs", "parse_check_in",
"""    let s = s.trim();
    let bad = || {""",
"""    let s = s.trim();
    if s.len() >= 16 {
        let _minute = &s[14..16];
    }
    let bad = || {""",
[("it","visit_log::a_multibyte_character_in_a_date_is_a_reject_not_a_panic")],
"the old parser's byte-offset slice (&s[14..16]) put back before the cursor")

m("S1", "2 panic: dead TrainModel worker ends the stream OK", SRV+"models.rs", "run_worker",
"""        _ => Ended::Failed(worker_died(status, limit_mb)),""",
"""        _ => Ended::Cancelled,""",
[("it","train_worker::a_worker_that_dies_ends_the_stream_with_internal_and_an_audit_line")],
"a worker that ends without a result is treated as a quiet end of the stream")

m("C5", "2 panic: params.json pair index beyond the codes", CORE+"model.rs", "Params::validate",
"""            if a >= b || usize::from(b) >= n_tasks {""",
"""            if false {""",
[("it","model_folder::a_pair_index_beyond_the_codes_is_refused_not_a_panic")],
"pair indices not checked against the codes")

m("S2", "2 panic: one EstimateBatch item ends the stream", SRV+"estimation.rs", "isolate",
"""    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {""",
"""    Ok::<_, ()>(f()).unwrap_or_else(|_| {""",
[("server","estimation::tests::a_panic_in_one_item_is_that_items_error")],
"no catch_unwind around an item")

m("S12", "2 panic: pair index beyond the codes, through the service", CORE+"model.rs", "Params::validate + Registry::load_version + registry::warm",
"""            if a >= b || usize::from(b) >= n_tasks {""",
"""            if false {""",
[("it","service_hardening::broken_versions_are_refused_and_the_newest_valid_one_serves")],
"validation of pairs and both catch_unwinds of the registry removed (the service's fix is validation plus isolation)",
more=[(SRV+"registry.rs",
"""        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {""",
"""        fn no_catch<R>(f: std::panic::AssertUnwindSafe<impl FnOnce() -> R>) -> Result<R, ()> {
            Ok((f.0)())
        }
        let result = no_catch(std::panic::AssertUnwindSafe(|| {"""),
      (SRV+"registry.rs",
"""    let e = std::panic::catch_unwind(|| estimate(model, &needs))""",
"""    let e = Ok::<_, ()>(estimate(model, &needs))""")])

# ---- 3: catalog size unbounded / training in the serving process
m("C6", "3 catalog size unbounded: max_codes", CORE+"train.rs", "train + check_catalog",
"""    if tables > req.limits.max_codes {""",
"""    if false && tables > req.limits.max_codes {""",
[("it","train_limits::limits_are_checked_before_the_log_is_read_and_name_the_numbers"),
 ("it","train_limits::the_command_line_refuses_a_catalog_over_the_limits_with_the_numbers"),
 ("it","train_worker::a_catalog_over_the_limits_is_refused_with_the_numbers")],
"both max_codes checks (the count before the parse and the parsed catalog's) disabled",
more=[(CORE+"train.rs", """    if codes > limits.max_codes {""", """    if false && codes > limits.max_codes {""")])

m("C6b", "3 catalog over the limits refused in milliseconds (count before the parse)", CORE+"train.rs", "train",
"""    if tables > req.limits.max_codes {""",
"""    if false && tables > req.limits.max_codes {""",
[("it","train_limits::a_catalog_over_the_limits_is_refused_in_under_a_second")],
"only the count before the parse disabled (the parsed catalog is still checked: the other tests of the limit pass, slower)")

m("C7", "3 features limit from the catalog", CORE+"train.rs", "check_catalog",
"""    if worst > limits.max_features {""",
"""    if false && worst > limits.max_features {""",
[("it","train_limits::limits_are_checked_before_the_log_is_read_and_name_the_numbers")],
"the catalog's worst-case feature count not checked before the log is read")

m("C9", "3 context columns limit", CORE+"train.rs", "check_catalog",
"""    if k > limits.max_context_columns {""",
"""    if false && k > limits.max_context_columns {""",
[("it","train_limits::limits_are_checked_before_the_log_is_read_and_name_the_numbers")], "")

m("C10", "3 header columns limit", CORE+"train.rs", "train",
"""    if columns > most {""",
"""    if false && columns > most {""",
[("it","train_limits::limits_are_checked_before_the_log_is_read_and_name_the_numbers")], "")

m("C8", "3 memory for the fit checked before it starts", CORE+"train.rs", "train",
"""    if need_mb > req.limits.max_memory_mb {""",
"""    if false && need_mb > req.limits.max_memory_mb {""",
[("it","train_limits::the_memory_needed_for_the_fit_is_checked_before_it_starts")], "")

m("C11", "3 codes no visit uses cost nothing", CORE+"fit.rs", "FittedColumns::new",
"""        for (t, _) in used.iter().enumerate().filter(|(_, u)| !**u) {""",
"""        for (t, _) in used.iter().enumerate().filter(|(_, u)| !**u).take(0) {""",
[("it","train_limits::codes_no_visit_uses_cost_nothing")],
"every catalog code's columns fitted (unused ones included)")

m("S13", "3 one training at a time per server", SRV+"models.rs", "train_model",
"""            let guard = self.training.clone().try_lock_owned().map_err(|_| {""",
"""            let guard = Arc::new(tokio::sync::Mutex::new(())).try_lock_owned().map_err(|_| {""",
[("it","train_worker::one_training_at_a_time_and_a_cancelled_one_is_killed_and_cleaned")],
"a fresh lock per call")

m("S14", "3 a cancelled training's worker is killed", SRV+"models.rs", "run_worker",
"""                let _ = child.start_kill();
                let _ = child.wait().await;""",
"""                let _ = child.wait().await;""",
[("it","train_worker::one_training_at_a_time_and_a_cancelled_one_is_killed_and_cleaned")],
"the worker is waited for, not killed, when the caller goes")

# ---- 4: numeric context range
m("C12", "4 numeric context outside the trained range", CORE+"catalog.rs", "ContextVar::check_trained",
"""            Some([lo, hi]) if self.kind == ContextKind::Numeric && !(lo..=hi).contains(&x) => Err(""",
"""            Some([lo, hi]) if false && self.kind == ContextKind::Numeric && !(lo..=hi).contains(&x) => Err(""",
[("core","needs::tests::numeric_context_must_be_finite_and_within_the_trained_range"),
 ("it","model_folder::numeric_context_outside_the_trained_range_is_refused_naming_field_value_and_range")], "")

m("C13", "4 numeric context beyond ±1e9 (1e308 → inf)", CORE+"catalog.rs", "ContextVar::check_number",
"""            ContextKind::Numeric if x.abs() > MAX_ABS_NUMERIC => Err(format!(""",
"""            ContextKind::Numeric if false && x.abs() > MAX_ABS_NUMERIC => Err(format!(""",
[("core","needs::tests::numeric_context_must_be_finite_and_within_the_trained_range")], "")

# ---- 5: duplicate codes
m("C14", "5 duplicate codes in one needs set", CORE+"needs.rs", "NeedsSet::validate",
"""                match first_at[insats] {""",
"""                match first_at[insats].filter(|_| false) {""",
[("core","needs::tests::a_code_asked_for_twice_is_refused_with_both_places")], "")

# ---- 6: broken version left on disk
m("C15", "6 a failed training publishes a broken version", CORE+"model.rs", "Model::save_new_version",
"""                Model::load(&tmp)?;""",
"""                let _ = Model::load(&tmp);""",
[("it","train_limits::a_version_that_does_not_load_is_never_published")],
"the temporary folder is renamed to N/ without being loaded first")

m("S3", "6 start-up falls back to the newest valid version", SRV+"registry.rs", "Registry::newest_valid",
"""        versions.reverse();
        let mut refused = Vec::new();""",
"""        versions.reverse();
        versions.truncate(1);
        let mut refused = Vec::new();""",
[("it","service_hardening::broken_versions_are_refused_and_the_newest_valid_one_serves")],
"only the newest version is tried")

m("S4", "6 ListModels shows a broken version AVAILABLE", SRV+"models.rs", "Models::list_models",
"""                        let refused = if aliases_of.is_empty() {
                            reg.check_version(&d.name, &d.version).err()""",
"""                        let refused = if aliases_of.is_empty() {
                            reg.refused_reason(&d.name, &d.version)""",
[("it","service_hardening::an_older_broken_version_is_not_listed_as_available")],
"only versions already tried are reported refused")

# ---- 7: audit fails open; history dir created
m("S5", "7 the audit log fails open", SRV+"audit.rs", "AuditLog::require",
"""        self.write(caller, action, target, outcome).map_err(|e| {""",
"""        let _: Result<(), ApiError> = self.write(caller, action, target, outcome).map_err(|e| {""",
[("it","service_hardening::actions_that_cannot_be_audited_are_refused"),
 ("it","service_hardening::a_purge_that_cannot_be_audited_does_not_run")],
"a failed write is logged and the action goes on",
more=[(SRV+"audit.rs", """                reason: e.to_string(),
            }
        })
    }""", """                reason: e.to_string(),
            }
        });
        Ok(())
    }""")])

m("S6", "7 history.url creates its directory tree", SRV+"server.rs", "open_history",
"""        if !dir.as_os_str().is_empty() && !dir.is_dir() {""",
"""        if false && !dir.as_os_str().is_empty() && !dir.is_dir() {""",
[("it","service_hardening::a_history_path_in_a_missing_directory_is_refused_at_start_up")], "")

# ---- 8: personnummer
m("C16", "8 personnummer with separators/prefixes", CORE+"personnummer.rs", "looks_like_personnummer",
"""pub fn looks_like_personnummer(id: &str) -> bool {
    // Digits""",
"""pub fn looks_like_personnummer(id: &str) -> bool {
    if !id.trim().chars().all(|c| c.is_ascii_digit() || c == '-' || c == '+') {
        return false;
    }
    // Digits""",
[("core","personnummer::tests::any_separator_prefix_or_suffix_is_seen_through"),
 ("it","visit_log::a_personal_identity_number_as_recipient_or_unit_is_rejected_without_echoing_it")],
"only an id made of digits, '-' and '+' is examined (the old whole-id check)")

m("C17", "8 personnummer in the visit log", CORE+"visits/reader.rs", "pseudonymous",
"""    if crate::personnummer::looks_like_personnummer(id) {
        return Err(row_error(""",
"""    if false && crate::personnummer::looks_like_personnummer(id) {
        return Err(row_error(""",
[("it","visit_log::a_personal_identity_number_as_recipient_or_unit_is_rejected_without_echoing_it")], "")

# ---- 9: validation gaps
m("C18", "9 catalog: context = \"age\" under an [[insats]] ignored (unknown keys)", CORE+"catalog.rs", "RawInsats",
"""#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInsats {""",
"""#[derive(Deserialize)]
struct RawInsats {""",
[("core","catalog::tests::a_context_given_as_a_string_is_an_error_not_ignored"),
 ("core","catalog::tests::unknown_keys_are_refused_naming_the_key")], "")

m("C18b", "9 catalog: unknown keys in [[context]]", CORE+"catalog.rs", "RawContext",
"""#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {""",
"""#[derive(Deserialize)]
struct RawContext {""",
[("core","catalog::tests::unknown_keys_are_refused_naming_the_key")], "")

m("C18c", "9 catalog: unknown top-level tables", CORE+"catalog.rs", "RawCatalog",
"""#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {""",
"""#[derive(Deserialize)]
struct RawCatalog {""",
[("core","catalog::tests::unknown_keys_are_refused_naming_the_key")], "")

m("C19", "9 catalog: duplicate labels", CORE+"catalog.rs", "Catalog::validate",
"""                        if let Some(first) = seen.insert(l.as_str(), k) {""",
"""                        if let Some(first) = seen.insert(l.as_str(), k).filter(|_| false) {""",
[("core","catalog::tests::duplicate_labels_bounds_out_of_order_and_control_characters_are_refused")], "")

m("C20", "9 catalog: min > max", CORE+"catalog.rs", "Catalog::validate",
"""                        if lo > hi {
                            return Err((entry, format!("min {lo} is greater than max {hi}")));""",
"""                        if false && lo > hi {
                            return Err((entry, format!("min {lo} is greater than max {hi}")));""",
[("core","catalog::tests::duplicate_labels_bounds_out_of_order_and_control_characters_are_refused")], "")

m("C21", "9 catalog: NUL / control characters in codes", CORE+"catalog.rs", "Catalog::validate",
"""                || code.chars().any(char::is_control)
            {""",
"""                || false
            {""",
[("core","catalog::tests::duplicate_labels_bounds_out_of_order_and_control_characters_are_refused")],
"alone: the test's earlier cases pass with their fixes in place and it reaches the control characters")

m("C22", "9 model: P10 above P90", CORE+"model.rs", "Params::validate",
"""            if lo > hi {
                return Err(format!("{key}: P10 multiplier {lo} is above P90 {hi}"));""",
"""            if false && lo > hi {
                return Err(format!("{key}: P10 multiplier {lo} is above P90 {hi}"));""",
[("it","model_folder::intervals_in_the_wrong_order_or_not_finite_are_refused")], "")

m("C23", "9 model: negative slot shares", CORE+"model.rs", "Params::validate",
"""            if h.slot_share.iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6 {""",
"""            if false && (h.slot_share.iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6) {""",
[("it","model_folder::slot_shares_must_be_shares")], "")

m("C24", "9 model: missing catalog.toml served", CORE+"model.rs", "Model::load",
"""        let (cpath, cbytes) = read("catalog.toml", crate::catalog::MAX_CATALOG_BYTES)?;
        let ctext = std::str::from_utf8(&cbytes)
            .map_err(|_| corrupt(&cpath, "the file is not valid UTF-8".into()))?;
        let on_disk =
            Catalog::from_toml(ctext, &cpath).map_err(|e| corrupt(&cpath, e.to_string()))?;
        if on_disk.fingerprint() != manifest.catalog_fingerprint {""",
"""        let cpath = dir.join("catalog.toml").display().to_string();
        if false {""",
[("it","model_folder::a_missing_or_different_catalog_file_is_refused_naming_it")],
"catalog.toml beside params.json not read or compared")

m("C25", "9 model: params.json read without a size limit (/dev/zero)", CORE+"model.rs", "Model::load",
"""            match crate::files::read_capped(&path, limit) {""",
"""            let _ = limit;
            match std::fs::read(&path).map_err(crate::files::CappedReadError::Io) {""",
[("it","model_folder::params_that_are_a_device_are_refused_at_once")],
"plain std::fs::read (the test is run under ulimit -v 4 GiB and a 120 s timeout)")

m("C26", "9 production/candidate as model names", CORE+"train.rs", "check_model_name",
"""    if matches!(name, "production" | "candidate") {""",
"""    if false && matches!(name, "production" | "candidate") {""",
[("it","service_hardening::aliases_are_not_model_names")], "")

m("S7", "9 undecodable messages answer INTERNAL", "crates/ramtid-proto/src/codec.rs", "RamtidDecoder::decode",
"""            let code = if s.code() == Code::Internal {""",
"""            let code = if false && s.code() == Code::Internal {""",
[("it","service_hardening::undecodable_messages_are_invalid_argument")], "")

m("S8", "9 error texts echo unbounded input (server)", SRV+"error.rs", "truncate_chars",
"""    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),""",
"""    match s.char_indices().nth(max).filter(|_| false) {
        None => Cow::Borrowed(s),""",
[("it","service_hardening::errors_never_echo_unbounded_input"),
 ("server","error::tests::echoed_values_are_cut_at_a_character")], "")

m("C33", "9 error texts echo unbounded input (core echo)", CORE+"echo.rs", "head",
"""    for c in chars.by_ref().take(max) {""",
"""    let _ = max;
    for c in chars.by_ref() {""",
[("core","echo::tests::short_values_are_shown_whole_and_long_ones_cut_with_their_length")], "")

m("C27", "9 header parsing quadratic", CORE+"visits/reader.rs", "Columns::locate",
"""            if let Some(first) = index.insert(name.clone(), i) {""",
"""            let again = names.iter().position(|n: &String| *n == name);
            index.insert(name.clone(), i);
            if let Some(first) = again {""",
[("it","visit_log::a_header_of_100_000_columns_is_located_in_linear_time")],
"duplicate check by a scan of the names so far (the old names.contains)")

m("C28", "9 half-of-the-first-1000-rows refusal looked at row 1000 only", CORE+"visits/reader.rs", "read_from",
"""                    if early_rejected * 2 > MALFORMED_CHECK_ROWS {""",
"""                    if report.rows_read == MALFORMED_CHECK_ROWS && early_rejected * 2 > report.rows_read {""",
[("it","visit_log::a_file_is_refused_as_soon_as_more_than_half_of_its_first_1000_rows_are_bad")], "")

# ---- 10: unclear or missing errors
m("C29", "10 a 0-byte log says a ctx_ column is missing", CORE+"visits/reader.rs", "read_from",
"""    if header.is_empty() {
        return Err(LogError::Empty {""",
"""    if false && header.is_empty() {
        return Err(LogError::Empty {""",
[("it","visit_log::an_empty_file_is_called_empty")], "")

m("C30", "10 a needs file with a BOM fails", CORE+"needs.rs", "needs_lines + parse_needs_file",
"""    let bytes = bytes.strip_prefix(b"\\xef\\xbb\\xbf").unwrap_or(bytes);
    let lines: Vec<NeedsLine<'_>> = bytes""",
"""    let lines: Vec<NeedsLine<'_>> = bytes""",
[("core","needs::tests::a_needs_file_may_start_with_a_bom_and_a_bad_line_fails_alone"),
 ("it","cli::an_empty_needs_file_fails_clearly_and_a_bom_or_a_bad_byte_stay_on_their_line")], "",
more=[(CORE+"needs.rs", """    let body = bytes.strip_prefix(b"\\xef\\xbb\\xbf").unwrap_or(bytes);""", """    let body = bytes;""")])

m("C31", "10 one invalid UTF-8 byte fails the whole needs file", CORE+"needs.rs", "needs_lines",
"""pub fn needs_lines(bytes: &[u8]) -> Result<Vec<NeedsLine<'_>>, NeedsFileError> {""",
"""pub fn needs_lines(bytes: &[u8]) -> Result<Vec<NeedsLine<'_>>, NeedsFileError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(NeedsFileError::Empty);
    }""",
[("core","needs::tests::a_needs_file_may_start_with_a_bom_and_a_bad_line_fails_alone"),
 ("it","cli::an_empty_needs_file_fails_clearly_and_a_bom_or_a_bad_byte_stay_on_their_line")],
"the file decoded as a whole before it is split in lines")

m("C32", "10 an empty needs file exits 0 silently", CORE+"needs.rs", "needs_lines",
"""    if lines.is_empty() {
        return Err(NeedsFileError::Empty);""",
"""    if false && lines.is_empty() {
        return Err(NeedsFileError::Empty);""",
[("core","needs::tests::an_empty_needs_file_is_an_error"),
 ("it","cli::an_empty_needs_file_fails_clearly_and_a_bom_or_a_bad_byte_stay_on_their_line")], "")

m("R1", "10 recipient MAPE -0.0% when no recipient qualified", "src/cmd/train.rs", "run (train's summary)",
"""        if f.planned_week_recipients == 0 {""",
"""        if false && f.planned_week_recipients == 0 {""",
[("it","cli::train_says_when_no_recipient_qualified_for_the_planned_week_mape")], "")

m("S9", "10 config: floats rounded into whole numbers (1e309, 2.5)", SRV+"config.rs", "whole_number",
"""            Err(E::custom(format!("{v} is not a whole number")))""",
"""            Ok(v as u64)""",
[("server","config::tests::bad_configuration_names_the_key")], "the config crate's rounding (saturating cast)")

m("S10", "10 config: numbers not range-checked", SRV+"config.rs", "Config::validate",
"""            if !(lo..=hi).contains(&value) {
                return invalid(key, format!("{value} is outside {lo} to {hi}"));
            }
        }
        let t = &self.training;""",
"""            if false && !(lo..=hi).contains(&value) {
                return invalid(key, format!("{value} is outside {lo} to {hi}"));
            }
        }
        let t = &self.training;""",
[("server","config::tests::bad_configuration_names_the_key"),
 ("server","config::tests::numbers_from_overrides_are_range_checked")], "")

m("S16", "3 the training worker's hard memory budget", SRV+"worker.rs", "run_child",
"""    if job.limit_memory {""",
"""    if false && job.limit_memory {""",
[("it","train_worker::the_worker_trains_under_its_memory_limit")],
"the worker never sets RLIMIT_AS")

m("C1p", "1 symlink race (a plain path open)", CORE+"datadir.rs", "DataDir::open_file_with",
"""        let fd = match strategy {
            Strategy::Best => match open_beneath(&self.fd, &rel) {
                Err(e) if openat2_missing(&e) => open_per_component(&self.fd, &rel),
                other => other,
            },
            Strategy::PerComponent => open_per_component(&self.fd, &rel),
        }
        .map_err(|e| explain(raw, e))?;""",
"""        let _ = strategy;
        let fd: OwnedFd = std::fs::File::open(self.path.join(&rel))
            .map(OwnedFd::from)
            .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
            .map_err(|e| explain(raw, e))?;""",
[("core","datadir::tests::files_inside_open_links_and_escapes_do_not"),
 ("it","train_limits::a_file_swapped_for_a_link_is_never_followed"),
 ("it","train_worker::a_file_swapped_for_a_link_outside_is_never_read")],
"the path opened as given (std::fs::File::open follows links), no confinement")


# How a test is run: its binary, and for some mutations a shell prefix or repetitions.
PREFIX = {"C25": "ulimit -v 4000000; timeout 300"}  # reads /dev/zero without the fix
REPEAT = {"C1": 20}  # a check-then-open race: counted over many runs


def cmd(kind, names):
    base = ["nice", "cargo", "test", "--locked"]
    if kind == "it":
        return base + ["--test", "it", "--", "--exact"] + names
    pkg = {"core": "ramtid-core", "server": "ramtid-server"}[kind]
    return base + ["-p", pkg, "--lib", "--", "--exact"] + names


def run(e):
    failed_all = True
    for kind, name in e["tests"]:
        c = cmd(kind, [name])
        if e["id"] in PREFIX:
            c = ["bash", "-c", PREFIX[e["id"]] + " " + " ".join(c)]
        n = REPEAT.get(e["id"], 1) if "swapped" in name else 1
        fails, msg = 0, ""
        for _ in range(n):
            p = subprocess.run(c, capture_output=True, text=True)
            out = p.stdout + p.stderr
            if re.search(r"^error(\[E\d+\])?:", out, re.M) and "test result" not in out:
                print(out[-2000:])
                raise SystemExit(f"{e['id']}: the mutated tree does not build")
            if not re.search(r"test result: ok\. 1 passed", out):
                fails += 1
                m = re.search(r"panicked at [^\n]*\n(.*?)(?:\nnote:|\nstack backtrace|\Z)", out, re.S)
                msg = msg or (m.group(1).strip() if m else out[-300:]).replace("\n", " ")[:200]
        ok = fails > 0
        failed_all &= ok
        print(f"{e['id']:5} {'FAILS' if ok else 'PASSES'} {fails}/{n}  {name}  {msg}", flush=True)
    return failed_all


def main(argv):
    os.chdir(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                            text=True, check=True).stdout.strip())
    by = {e["id"]: e for e in M}
    if argv == ["--list"]:
        for e in M:
            print(f"{e['id']:5} {e['finding']}")
        return 0
    ids = argv or [e["id"] for e in M]
    unknown = [i for i in ids if i not in by]
    if unknown:
        print(f"unknown mutation(s): {unknown}; see --list", file=sys.stderr)
        return 2
    files = sorted({f for e in M for f, _, _ in e["edits"]})
    dirty = subprocess.run(["git", "status", "--porcelain", "--"] + files,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print(f"these files have changes; commit or stash them first:\n{dirty}", file=sys.stderr)
        return 2
    good = True
    for i in ids:
        e = by[i]
        try:
            for f, old, new in e["edits"]:
                text = open(f).read()
                if text.count(old) != 1:
                    raise SystemExit(f"{i}: {f}: the text to revert is not found once (the code moved)")
                open(f, "w").write(text.replace(old, new))
            good &= run(e)
        finally:
            subprocess.run(["git", "checkout", "--"] + files, check=True)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
