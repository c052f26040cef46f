//! The journal that takes SQLite off the acknowledgement path.
//!
//! Why: on two cores, with SQLite on the path of every `Estimate` (a writer thread the call
//! waited for), storing each calculation cost ~45 % of `Estimate`'s throughput: the insert
//! into a random leaf of the case index, the WAL frames, and waking a thread and being woken
//! back, per small batch (README, "History and throughput").
//!
//! What: [`Journal::append`] gives a calculation its id and writes it, in the caller's own
//! thread, as one checksummed frame at the end of the current segment file. The record is
//! acknowledged
//!
//! * with `synchronous=full` (the default), once a syncer thread has `fdatasync`ed the
//!   segment past it (one sync serves everyone who wrote meanwhile): it survives a power
//!   loss;
//! * with `synchronous=normal`, at once: it is in the kernel, so it survives a killed
//!   process; a power loss may take what was not yet indexed (at most ~[`INDEX_EVERY`]).
//!
//! The history's writer thread then indexes: it moves the journal's records into SQLite in
//! large transactions (synchronous=FULL there) and deletes a segment once every record in it
//! is committed. Reads first wait until the indexer has caught up with every record
//! acknowledged before they started, so a caller always reads its own writes. At open,
//! whatever segments a crash left are replayed into SQLite (idempotently, by id) before
//! anything else runs.
//!
//! One process owns a journal (an exclusive lock on `LOCK` in its directory); several
//! replicas share a history through PostgreSQL instead.

use super::{CalcId, Calculation, HistoryError, Result, SqliteSync, StoredResult};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How often the indexer moves acknowledged records into SQLite when nobody asks sooner.
/// Larger batches cost less per record (the case index's leaves are shared); reads and
/// erasures do not wait for it, they ask for a flush.
pub(crate) const INDEX_EVERY: Duration = Duration::from_millis(100);
/// Under `synchronous=normal`, how often the syncer syncs what was written (so what a power
/// loss can take is bounded in time, not only by the indexer's pace).
pub(crate) const SYNC_EVERY: Duration = Duration::from_millis(10);
/// A segment is closed for writing past this size, and deleted once the indexer has
/// committed its last record: the journal holds seconds of calculations, not hours.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Most records the indexer commits in one transaction.
const INDEX_BATCH: usize = 20_000;
/// Acknowledged but not yet indexed records beyond which appends wait for the indexer: the
/// memory they hold is bounded even when the disk is slow.
pub(crate) const MAX_UNINDEXED: i64 = 50_000;
/// Frame header: payload length (u32), CRC-32C of payload and id (u32), id (i64).
const HEADER: usize = 16;
/// What a segment starts with (written with its first frame, so that a segment holding
/// nothing stays empty): "RAMTIDJ" and the format's version. Version 2: frames checked with
/// CRC-32C. Version 1 (segments of earlier releases, which had no such header) checked them
/// with a hash of the project's own; replay still reads those. As a frame length (the first
/// four bytes of a version 1 segment) "RAMT" is far above [`MAX_FRAME`], so the two cannot
/// be confused.
const SEGMENT_MAGIC: [u8; 8] = *b"RAMTIDJ\x02";
const SEGMENT_HEADER: usize = SEGMENT_MAGIC.len();
/// A frame larger than this is damage, not a record.
const MAX_FRAME: usize = 16 << 20;

/// A level every waiter can wait for: the last id synced, or the last id indexed.
pub(crate) struct Watermark {
    mark: Mutex<Mark>,
    changed: Condvar,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct Mark {
    upto: CalcId,
    /// Why the level cannot move (the last attempt failed); cleared when it moves again.
    error: Option<String>,
}

impl Watermark {
    fn new(upto: CalcId) -> Watermark {
        Watermark {
            mark: Mutex::new(Mark { upto, error: None }),
            changed: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn upto(&self) -> CalcId {
        lock(&self.mark).upto
    }

    fn advance(&self, upto: CalcId) {
        {
            let mut m = lock(&self.mark);
            m.upto = m.upto.max(upto);
            m.error = None;
        }
        self.wake();
    }

    pub(crate) fn fail(&self, error: String) {
        lock(&self.mark).error = Some(error);
        self.wake();
    }

    fn wake(&self) {
        self.changed.notify_all();
        self.notify.notify_waiters();
    }

    /// `Some` once waiting for `target` is over: reached, or failed.
    fn check(m: &Mark, target: CalcId) -> Option<Result<()>> {
        if m.upto >= target {
            Some(Ok(()))
        } else {
            m.error.clone().map(|e| Err(HistoryError::Batch(e)))
        }
    }

    pub(crate) async fn wait(&self, target: CalcId) -> Result<()> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // registered before the check, so that a wake between the two is not missed
            notified.as_mut().enable();
            if let Some(done) = Self::check(&lock(&self.mark), target) {
                return done;
            }
            notified.await;
        }
    }

    pub(crate) fn wait_blocking(&self, target: CalcId) -> Result<()> {
        let mut m = lock(&self.mark);
        loop {
            if let Some(done) = Self::check(&m, target) {
                return done;
            }
            m = self.changed.wait(m).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A poisoned lock here only means another thread panicked mid-append; the state it guards
/// stays consistent (every field is updated after the write it describes succeeded).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Segment {
    seq: u64,
    file: Arc<File>,
    len: u64,
}

struct Sealed {
    seq: u64,
    /// Its length: whole frames only.
    len: u64,
    /// The last id written to it (0: none).
    last_id: CalcId,
}

/// Where the indexer has read to: a segment and an offset in it (always a frame boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    seq: u64,
    offset: u64,
}

struct State {
    active: Segment,
    next_id: CalcId,
    sealed: Vec<Sealed>,
    /// Set when an fsync failed: what was written since cannot be trusted to be on disk, and
    /// retrying the fsync would not tell (the kernel may have dropped the dirty pages).
    broken: Option<String>,
    shutdown: bool,
}

pub(crate) struct Journal {
    dir: PathBuf,
    sync: SqliteSync,
    state: Mutex<State>,
    /// Wakes the syncer when something was written.
    written: Condvar,
    pub(crate) synced: Watermark,
    pub(crate) indexed: Watermark,
    /// The segment started at open: the indexer begins there. Fixed at open, not read from
    /// the state when the indexer gets round to it: by then a caller may already have
    /// appended and sealed (an erasure), and starting at the new active segment would skip
    /// the sealed one.
    first_seq: u64,
    /// Held for the journal's life: one process per journal.
    _lock: File,
}

/// Commits replayed records into the database (ids already there skipped).
pub(crate) type Replay<'r> = dyn FnMut(&[(CalcId, &Calculation)]) -> Result<()> + 'r;

/// Records read back from the journal, in id order.
pub(crate) type Records = Vec<(CalcId, Calculation)>;

impl Journal {
    /// The journal beside the database at `db`: `<db>.journal/`.
    pub(crate) fn dir_for(db: &Path) -> PathBuf {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".journal");
        db.with_file_name(name)
    }

    /// Opens (creating) the journal for the database at `db`, replays what a crash left into
    /// SQLite through `replay` (records in id order, in chunks; ids already there are
    /// skipped) and starts a fresh segment. `last_id` is the largest id SQLite ever gave out.
    pub(crate) fn open(
        db: &Path,
        sync: SqliteSync,
        last_id: CalcId,
        replay: &mut Replay<'_>,
    ) -> Result<Journal> {
        let dir = Self::dir_for(db);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HistoryError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if lock_file.try_lock().is_err() {
            return Err(HistoryError::InUse(dir));
        }

        let mut seqs = segments(&dir)?;
        seqs.sort_unstable();
        let mut max_seen = last_id;
        for &seq in &seqs {
            let path = segment_path(&dir, seq);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let (records, damage) =
                decode_segment(&bytes).map_err(|version| HistoryError::JournalFormat {
                    path: path.clone(),
                    version,
                })?;
            if let Some(offset) = damage {
                // A write cut short by a power loss leaves a torn last frame; it was never
                // acknowledged. Only the position is logged: the content is personal data.
                tracing::warn!(segment = %path.display(), offset, "journal segment ends in an incomplete or damaged record; replayed what precedes it");
            }
            for chunk in records.chunks(INDEX_BATCH) {
                let refs: Vec<(CalcId, &Calculation)> =
                    chunk.iter().map(|(i, c)| (*i, c)).collect();
                replay(&refs)?;
            }
            max_seen = max_seen.max(records.last().map_or(0, |r| r.0));
            if !records.is_empty() {
                tracing::info!(records = records.len(), segment = %path.display(), "replayed journal segment into the history");
            }
        }
        // Replayed and committed (synchronous=FULL): the segments can go.
        for &seq in &seqs {
            let path = segment_path(&dir, seq);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        let seq = seqs.last().map_or(1, |s| s + 1);
        let active = create_segment(&dir, seq)?;
        Ok(Journal {
            dir,
            sync,
            state: Mutex::new(State {
                active,
                next_id: max_seen + 1,
                sealed: Vec::new(),
                broken: None,
                shutdown: false,
            }),
            written: Condvar::new(),
            synced: Watermark::new(max_seen),
            indexed: Watermark::new(max_seen),
            first_seq: seq,
            _lock: lock_file,
        })
    }

    /// Whether an acknowledgement waits for the syncer.
    pub(crate) fn waits_for_sync(&self) -> bool {
        self.sync == SqliteSync::Full
    }

    /// The last id handed out.
    pub(crate) fn last_id(&self) -> CalcId {
        lock(&self.state).next_id - 1
    }

    /// Writes `calc` and returns its id. Durable against a killed process on return; with
    /// [`waits_for_sync`](Self::waits_for_sync), wait for [`synced`](Self::synced) to reach
    /// the id before acknowledging it.
    ///
    /// The journal keeps no copy in memory: the indexer reads the frames back from the
    /// segment (from the page cache). Holding every calculation until it was indexed, and
    /// freeing it on another thread, cost 7 % of `Estimate`'s throughput.
    pub(crate) fn append(&self, calc: &Calculation) -> Result<CalcId> {
        // Encoded outside the lock: callers on other cores append meanwhile.
        // Room in front for the segment header, sent only with a segment's first frame.
        let mut frame = Vec::with_capacity(SEGMENT_HEADER + HEADER + encoded_len(calc));
        frame.extend_from_slice(&SEGMENT_MAGIC);
        frame.resize(SEGMENT_HEADER + HEADER, 0);
        encode_payload(calc, &mut frame);
        let sum = crc32c::crc32c(&frame[SEGMENT_HEADER + HEADER..]);
        let payload_len = (frame.len() - SEGMENT_HEADER - HEADER) as u32;

        let mut st = lock(&self.state);
        if let Some(e) = &st.broken {
            return Err(HistoryError::Batch(e.clone()));
        }
        let id = st.next_id;
        let crc = frame_check(sum, id);
        let h = &mut frame[SEGMENT_HEADER..SEGMENT_HEADER + HEADER];
        h[0..4].copy_from_slice(&payload_len.to_le_bytes());
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        h[8..16].copy_from_slice(&id.to_le_bytes());
        let frame = if st.active.len == 0 {
            &frame[..]
        } else {
            &frame[SEGMENT_HEADER..]
        };
        if let Err(e) = (&*st.active.file).write_all(frame) {
            // Possibly half a frame on disk: replay stops there; nothing after it may be
            // acknowledged, so start a new segment for whoever comes next.
            let msg = format!("cannot write the history journal: {e}");
            if let Err(sealing) = self.seal_active(&mut st) {
                // Writing on after half a frame would put records where neither the writer
                // nor a replay looks: refuse until a restart has replayed what is whole.
                st.broken = Some(format!("{msg}; then {sealing}"));
            }
            return Err(HistoryError::Batch(msg));
        }
        st.next_id += 1;
        st.active.len += frame.len() as u64;
        if st.active.len >= SEGMENT_BYTES {
            self.seal_active(&mut st)?;
        }
        drop(st);
        if self.waits_for_sync() {
            self.written.notify_one();
        }
        Ok(id)
    }

    /// Closes the active segment for writing (synced first, under `synchronous=full`) and
    /// starts the next one.
    fn seal_active(&self, st: &mut State) -> Result<()> {
        let next = create_segment(&self.dir, st.active.seq + 1)?;
        let old = std::mem::replace(&mut st.active, next);
        {
            if let Err(e) = old.file.sync_data() {
                let msg = format!("cannot sync the history journal: {e}");
                st.broken = Some(msg.clone());
                self.synced.fail(msg.clone());
                return Err(HistoryError::Batch(msg));
            }
        }
        st.sealed.push(Sealed {
            seq: old.seq,
            len: old.len,
            last_id: st.next_id - 1,
        });
        Ok(())
    }

    /// Starts a new segment now, so that everything written so far is in sealed segments,
    /// which the indexer deletes once it has committed them (erasure must leave no copy).
    pub(crate) fn seal(&self) -> Result<()> {
        let mut st = lock(&self.state);
        if st.active.len == 0 {
            return Ok(());
        }
        self.seal_active(&mut st)
    }

    /// Where the indexer starts after open: the beginning of the segment open started
    /// (replay left nothing before it), whatever was appended or sealed since.
    pub(crate) fn start(&self) -> Cursor {
        Cursor {
            seq: self.first_seq,
            offset: 0,
        }
    }

    /// Whether records wait to be indexed.
    #[cfg(test)]
    fn has_unindexed(&self) -> bool {
        self.last_id() > self.indexed.upto()
    }

    /// The next records to index after `at`, read back from the segment files (at most
    /// [`INDEX_BATCH`], whole frames only), and where the read ended. Empty when the indexer
    /// has caught up.
    pub(crate) fn read_from(&self, at: Cursor) -> Result<(Records, Cursor)> {
        // Every segment from the cursor's on, and how far each holds whole frames.
        let spans: Vec<(u64, u64)> = {
            let st = lock(&self.state);
            st.sealed
                .iter()
                .map(|s| (s.seq, s.len))
                .chain([(st.active.seq, st.active.len)])
                .filter(|(seq, _)| *seq >= at.seq)
                .collect()
        };
        let mut cursor = at;
        let mut out = Records::new();
        for (seq, end) in spans {
            if seq > cursor.seq {
                cursor = Cursor { seq, offset: 0 };
            }
            if cursor.offset >= end {
                continue;
            }
            let path = segment_path(&self.dir, seq);
            let mut bytes = vec![0u8; (end - cursor.offset) as usize];
            {
                use std::os::unix::fs::FileExt;
                File::open(&path)
                    .and_then(|f| f.read_exact_at(&mut bytes, cursor.offset))
                    .map_err(|source| HistoryError::Io {
                        path: path.clone(),
                        source,
                    })?;
            }
            let room = INDEX_BATCH.saturating_sub(out.len());
            // This process wrote every segment it reads back: always the current format.
            let header = if cursor.offset == 0 {
                SEGMENT_HEADER
            } else {
                0
            };
            let (records, used, damage) = if bytes.get(..header) == Some(&SEGMENT_MAGIC[..header]) {
                let (r, used, damage) = decode_frames(&bytes[header..], room, frame_check_v2);
                (r, header + used, damage)
            } else {
                (Records::new(), 0, Some(0))
            };
            if damage.is_some() {
                // A segment's length counts whole frames only: damage here is a disk fault
                // (or a bug), and indexing past it would skip records without a word.
                return Err(HistoryError::Batch(format!(
                    "history journal {} is damaged at byte {}",
                    path.display(),
                    cursor.offset as usize + used
                )));
            }
            cursor.offset += used as u64;
            out.extend(records);
            if out.len() >= INDEX_BATCH {
                break;
            }
        }
        Ok((out, cursor))
    }

    /// After the indexer committed everything up to `upto`: deletes the segments that hold
    /// nothing newer, and replaces the active one when it is large and fully indexed.
    pub(crate) fn indexed_upto(&self, upto: CalcId) -> Result<()> {
        self.indexed.advance(upto);
        let done: Vec<Sealed> = {
            let mut st = lock(&self.state);
            let (done, keep) = std::mem::take(&mut st.sealed)
                .into_iter()
                .partition(|s| s.last_id <= upto);
            st.sealed = keep;
            done
        };
        for s in done {
            let path = segment_path(&self.dir, s.seq);
            std::fs::remove_file(&path).map_err(|source| HistoryError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The syncer: `fdatasync`s the active segment whenever something was written since the
    /// last sync (under `synchronous=normal`, at most every [`SYNC_EVERY`]), then lets
    /// everyone written before it go. Returns at shutdown.
    pub(crate) fn run_syncer(&self) {
        let mut synced = self.synced.upto();
        loop {
            let (upto, file) = {
                let mut st = lock(&self.state);
                if self.sync == SqliteSync::Normal && !st.shutdown {
                    // Nobody waits for these syncs: they bound what a power loss can take to
                    // the last SYNC_EVERY, at a cost of a hundred syncs a second at most.
                    st = self
                        .written
                        .wait_timeout(st, SYNC_EVERY)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                let st = self
                    .written
                    .wait_while(st, |st| {
                        st.next_id - 1 <= synced && !st.shutdown && st.broken.is_none()
                    })
                    .unwrap_or_else(|p| p.into_inner());
                if st.next_id - 1 <= synced || st.broken.is_some() {
                    return;
                }
                (st.next_id - 1, st.active.file.clone())
            };
            // Earlier segments were synced when they were sealed.
            match file.sync_data() {
                Ok(()) => {
                    synced = upto;
                    self.synced.advance(upto);
                }
                Err(e) => {
                    let msg = format!("cannot sync the history journal: {e}");
                    lock(&self.state).broken = Some(msg.clone());
                    self.synced.fail(msg);
                    return;
                }
            }
        }
    }

    /// Lets the syncer finish what was written and return.
    pub(crate) fn shut_down(&self) {
        lock(&self.state).shutdown = true;
        self.written.notify_all();
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.seg"))
}

/// The sequence numbers of the segments in `dir`.
fn segments(dir: &Path) -> Result<Vec<u64>> {
    let io = |source| HistoryError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse().ok())
        {
            seqs.push(seq);
        }
    }
    Ok(seqs)
}

fn create_segment(dir: &Path, seq: u64) -> Result<Segment> {
    let path = segment_path(dir, seq);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|source| HistoryError::Io {
            path: path.clone(),
            source,
        })?;
    // A synced record in a file whose directory entry was lost would be lost with it.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| HistoryError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(Segment {
        seq,
        file: Arc::new(file),
        len: 0,
    })
}

// ---- frames ----

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

/// The text fields, in the order a frame holds them (`decode_payload` reads them so).
fn strings(c: &Calculation) -> [&str; 6] {
    [
        &c.case_id,
        &c.caller,
        &c.model_name,
        &c.model_version,
        &c.unit_id,
        &c.needs_json,
    ]
}

/// What [`encode_payload`] appends, in bytes.
fn encoded_len(c: &Calculation) -> usize {
    16 + strings(c).iter().map(|s| 4 + s.len()).sum::<usize>() + 1 + 4 + c.result.len()
}

fn encode_payload(c: &Calculation, out: &mut Vec<u8>) {
    out.extend_from_slice(&c.created_ms.to_le_bytes());
    out.extend_from_slice(&c.weekly_min.to_le_bytes());
    for s in strings(c) {
        put_str(out, s.as_bytes());
    }
    match &c.result {
        StoredResult::Json(s) => {
            out.push(0);
            put_str(out, s.as_bytes());
        }
        StoredResult::Protobuf(b) => {
            out.push(1);
            put_str(out, b);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

fn decode_payload(payload: &[u8]) -> Option<Calculation> {
    let mut r = Reader(payload);
    let created_ms = r.i64()?;
    let weekly_min = f64::from_bits(r.i64()? as u64);
    let case_id = r.string()?;
    let caller = r.string()?;
    let model_name = r.string()?;
    let model_version = r.string()?;
    let unit_id = r.string()?;
    let needs_json = r.string()?;
    let result = match r.u8()? {
        0 => StoredResult::Json(r.string()?),
        1 => StoredResult::Protobuf(r.bytes()?.to_vec()),
        _ => return None,
    };
    r.0.is_empty().then_some(Calculation {
        case_id,
        created_ms,
        caller,
        model_name,
        model_version,
        needs_json,
        result,
        weekly_min,
        unit_id,
    })
}

/// Every whole, intact frame of a segment, and the offset of the first that is not (a torn
/// tail, or damage) if any; `Err(version)` for a format this build does not know.
fn decode_segment(bytes: &[u8]) -> std::result::Result<(Records, Option<usize>), u8> {
    let magic = &SEGMENT_MAGIC[..SEGMENT_HEADER - 1];
    if bytes.len() < SEGMENT_HEADER && SEGMENT_MAGIC.starts_with(bytes) {
        // Empty, or a first write cut short inside the header: nothing was acknowledged.
        return Ok((Records::new(), (!bytes.is_empty()).then_some(0)));
    }
    if let Some(rest) = bytes.strip_prefix(magic) {
        return match rest[0] {
            2 => {
                let (records, _, damage) = decode_frames(&rest[1..], usize::MAX, frame_check_v2);
                Ok((records, damage.map(|d| d + SEGMENT_HEADER)))
            }
            version => Err(version),
        };
    }
    // No header: a segment of an earlier release (version 1).
    let (records, _, damage) = decode_frames(bytes, usize::MAX, v1::frame_check);
    Ok((records, damage))
}

/// Up to `limit` whole, intact frames from the start; the bytes they take; and the offset of
/// the first frame that is not whole and intact, if it came before the limit.
fn decode_frames(
    bytes: &[u8],
    limit: usize,
    check: fn(&[u8], CalcId) -> u32,
) -> (Records, usize, Option<usize>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() && out.len() < limit {
        let Some(header) = bytes.get(at..at + HEADER) else {
            return (out, at, Some(at));
        };
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let id = i64::from_le_bytes(header[8..16].try_into().unwrap());
        let Some(payload) = (len <= MAX_FRAME)
            .then(|| bytes.get(at + HEADER..at + HEADER + len))
            .flatten()
        else {
            return (out, at, Some(at));
        };
        let expected = check(payload, id);
        let Some(calc) = (crc == expected).then(|| decode_payload(payload)).flatten() else {
            return (out, at, Some(at));
        };
        out.push((id, calc));
        at += HEADER + len;
    }
    (out, at, None)
}

/// The frame decoder as a crash replay runs it, for the fuzz targets in `fuzz/` (built with
/// the `fuzzing` feature only; not part of the crate's API) and the property tests below.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing {
    use super::*;

    /// Decodes a segment file's bytes as [`Journal::open`] does before replaying them: the
    /// number of whole, intact records and the offset where damage starts, or the unknown
    /// format's version.
    pub fn replay_segment(bytes: &[u8]) -> std::result::Result<(usize, Option<usize>), u8> {
        decode_segment(bytes).map(|(records, damage)| (records.len(), damage))
    }

    /// Rewrites each whole frame's check so that it passes: random bytes then reach the
    /// payload decoder instead of stopping at the checksum. Frames of a segment with this
    /// build's header get this build's check, others version 1's.
    pub fn seal_frames(bytes: &mut [u8]) {
        let magic = &SEGMENT_MAGIC[..SEGMENT_HEADER - 1];
        type Check = fn(&[u8], CalcId) -> u32;
        let (start, check): (usize, Check) =
            if bytes.len() >= SEGMENT_HEADER && bytes.starts_with(magic) {
                (SEGMENT_HEADER, frame_check_v2)
            } else {
                (0, v1::frame_check)
            };
        let mut at = start;
        while let Some(header) = bytes.get(at..at + HEADER) {
            let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
            let id = i64::from_le_bytes(header[8..16].try_into().unwrap());
            let Some(payload) =
                bytes.get(at + HEADER..at.saturating_add(HEADER).saturating_add(len))
            else {
                return;
            };
            let crc = check(payload, id);
            bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            at += HEADER + len;
        }
    }
}

// ---- checksum ----
//
// CRC-32C (Castagnoli), computed with the SSE 4.2 / ARMv8 CRC instructions where the CPU
// has them (the `crc32c` crate detects them at run time). A bytewise table CRC-32 over every
// calculation cost 5 % of `Estimate`'s throughput; the hardware one took 0.3–0.8 times as
// long per frame (600 B to 6 kB) as the 8-bytes-at-a-time hash of version 1 it replaced.

/// The header's check: the payload's CRC-32C (computed outside the lock) extended over the
/// frame's id, so that a frame moved to another id does not pass.
fn frame_check(payload_crc: u32, id: CalcId) -> u32 {
    crc32c::crc32c_append(payload_crc, &id.to_le_bytes())
}

fn frame_check_v2(payload: &[u8], id: CalcId) -> u32 {
    frame_check(crc32c::crc32c(payload), id)
}

/// Version 1's check, kept to replay segments that an earlier release left after a crash.
mod v1 {
    use super::CalcId;

    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

    fn mix(h: u64, w: u64) -> u64 {
        (h ^ w.wrapping_mul(K2)).rotate_left(31).wrapping_mul(K1)
    }

    fn checksum(bytes: &[u8]) -> u64 {
        let mut chunks = bytes.chunks_exact(8);
        let mut h = K1 ^ bytes.len() as u64;
        for c in &mut chunks {
            h = mix(h, u64::from_le_bytes(c.try_into().unwrap()));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        mix(h, u64::from_le_bytes(tail))
    }

    pub(super) fn frame_check(payload: &[u8], id: CalcId) -> u32 {
        let mut h = mix(checksum(payload), id as u64);
        h ^= h >> 33;
        h = h.wrapping_mul(K2);
        h ^= h >> 29;
        (h ^ (h >> 32)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(case: &str, n: i64) -> Calculation {
        Calculation {
            case_id: case.into(),
            created_ms: 1_700_000_000_000 + n,
            caller: "anna".into(),
            model_name: "nordstad".into(),
            model_version: "1".into(),
            needs_json: format!("{{\"n\":{n}}}"),
            result: if n % 2 == 0 {
                StoredResult::Protobuf(vec![n as u8; 40])
            } else {
                StoredResult::Json("{}".into())
            },
            weekly_min: 120.5 + n as f64,
            unit_id: "team-1".into(),
        }
    }

    #[test]
    fn the_check_sees_any_one_bit_and_the_id() {
        let payload: Vec<u8> = (0..203u32).map(|i| (i * 7) as u8).collect();
        let good = frame_check_v2(&payload, 42);
        // The split computation (payload outside the lock, id inside) is the whole CRC.
        let whole = crc32c::crc32c(&[&payload[..], &42i64.to_le_bytes()].concat());
        assert_eq!(good, whole);
        assert_ne!(good, frame_check_v2(&payload, 43));
        assert_ne!(good, frame_check_v2(&payload[..202], 42));
        for bit in 0..payload.len() * 8 {
            let mut p = payload.clone();
            p[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(good, frame_check_v2(&p, 42), "bit {bit}");
        }
    }

    /// A frame as version 1 wrote it (no segment header, the old check).
    fn v1_frame(id: CalcId, c: &Calculation) -> Vec<u8> {
        let mut payload = Vec::new();
        encode_payload(c, &mut payload);
        let mut f = Vec::new();
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(&v1::frame_check(&payload, id).to_le_bytes());
        f.extend_from_slice(&id.to_le_bytes());
        f.extend_from_slice(&payload);
        f
    }

    #[test]
    fn segments_start_with_the_format_and_hold_nothing_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Normal);
        let seg = segment_path(&Journal::dir_for(&dir.path().join("h.db")), 1);
        assert_eq!(std::fs::read(&seg).unwrap(), b"");
        j.append(&calc("c", 0)).unwrap();
        j.append(&calc("c", 1)).unwrap();
        let bytes = std::fs::read(&seg).unwrap();
        assert_eq!(bytes[..SEGMENT_HEADER], SEGMENT_MAGIC, "one header, first");
        assert_eq!(
            bytes
                .windows(SEGMENT_HEADER)
                .filter(|w| *w == SEGMENT_MAGIC)
                .count(),
            1
        );
        assert_eq!(decode_segment(&bytes).unwrap().0.len(), 2);
    }

    #[test]
    fn a_segment_an_earlier_release_left_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = Journal::dir_for(&dir.path().join("h.db"));
        std::fs::create_dir_all(&jdir).unwrap();
        let old: Vec<_> = (0..3).map(|n| (n + 7, calc("old", n))).collect();
        let mut bytes: Vec<u8> = old.iter().flat_map(|(i, c)| v1_frame(*i, c)).collect();
        bytes.extend_from_slice(&[9, 0, 0]); // and a torn tail
        std::fs::write(segment_path(&jdir, 4), &bytes).unwrap();
        let (again, j) = replayed(dir.path(), SqliteSync::Normal);
        assert_eq!(again, old);
        assert!(
            !segment_path(&jdir, 4).exists(),
            "replayed segments are removed"
        );
        assert_eq!(j.append(&calc("new", 0)).unwrap(), 10);
        // What this build writes is read back in its own format.
        let (read, _) = j.read_from(j.start()).unwrap();
        assert_eq!(read, vec![(10, calc("new", 0))]);
    }

    #[test]
    fn a_segment_of_an_unknown_format_is_refused_with_its_path_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = Journal::dir_for(&dir.path().join("h.db"));
        std::fs::create_dir_all(&jdir).unwrap();
        let mut bytes = SEGMENT_MAGIC.to_vec();
        bytes[SEGMENT_HEADER - 1] = 9;
        bytes.extend_from_slice(&[0; 40]);
        std::fs::write(segment_path(&jdir, 1), &bytes).unwrap();
        let e = Journal::open(&dir.path().join("h.db"), SqliteSync::Normal, 0, &mut |_| {
            Ok(())
        })
        .err()
        .expect("refused");
        let msg = e.to_string();
        assert!(
            matches!(e, HistoryError::JournalFormat { version: 9, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("0000000000000001.seg") && msg.contains("version 9"),
            "{msg}"
        );
        assert!(segment_path(&jdir, 1).exists(), "nothing is deleted");
    }

    fn replayed(dir: &Path, sync: SqliteSync) -> (Records, Journal) {
        let mut got = Vec::new();
        let j = Journal::open(&dir.join("h.db"), sync, 0, &mut |rows| {
            got.extend(rows.iter().map(|(i, c)| (*i, (*c).clone())));
            Ok(())
        })
        .unwrap();
        (got, j)
    }

    #[test]
    fn what_a_crash_leaves_is_replayed_up_to_a_torn_tail_and_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (none, j) = replayed(dir.path(), SqliteSync::Full);
        assert!(none.is_empty());
        let written: Vec<_> = (0..5)
            .map(|n| (j.append(&calc("c", n)).unwrap(), calc("c", n)))
            .collect();
        assert_eq!(
            written.iter().map(|w| w.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let seg = segment_path(&Journal::dir_for(&dir.path().join("h.db")), 1);
        drop(j); // a crash: nothing indexed, nothing deleted
                 // a power loss in the middle of a sixth frame
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[7, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);

        let (again, j) = replayed(dir.path(), SqliteSync::Full);
        assert_eq!(again, written);
        assert!(!seg.exists(), "replayed segments are removed");
        assert_eq!(
            j.append(&calc("c", 9)).unwrap(),
            6,
            "ids go on after the replayed ones"
        );
    }

    #[test]
    fn a_damaged_frame_stops_replay_there() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Normal);
        for n in 0..3 {
            j.append(&calc("c", n)).unwrap();
        }
        drop(j);
        let seg = segment_path(&Journal::dir_for(&dir.path().join("h.db")), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        let first = SEGMENT_HEADER;
        let second = first
            + HEADER
            + u32::from_le_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
        bytes[second + HEADER + 3] ^= 0x40; // one bit in the second record's payload
        std::fs::write(&seg, &bytes).unwrap();
        let (again, _) = replayed(dir.path(), SqliteSync::Normal);
        assert_eq!(again, vec![(1, calc("c", 0))]);
    }

    /// A segment as this build writes it, with `calcs` as ids 1, 2, …
    fn segment_of(calcs: &[Calculation]) -> Vec<u8> {
        let mut bytes = SEGMENT_MAGIC.to_vec();
        for (i, c) in calcs.iter().enumerate() {
            let mut payload = Vec::new();
            encode_payload(c, &mut payload);
            let id = i as CalcId + 1;
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&frame_check_v2(&payload, id).to_le_bytes());
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        bytes
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]

        /// Any bytes as a segment (with this build's header or an earlier one's, and with the
        /// frames' checks made to pass so that the payload decoder sees them): records, or
        /// damage at an offset inside the file, or an unknown version; never a panic.
        #[test]
        fn any_segment_bytes_replay_or_report_damage(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            header in proptest::prelude::any::<bool>(),
            sealed in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = if header { SEGMENT_MAGIC.to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&body);
            if sealed {
                fuzzing::seal_frames(&mut bytes);
            }
            if let Ok((_, Some(offset))) = fuzzing::replay_segment(&bytes) {
                proptest::prop_assert!(offset <= bytes.len());
            }
        }

        /// A segment damaged anywhere (a byte changed, bytes cut off or inserted) replays a
        /// prefix of what was written, in order, or is refused for its version: never a
        /// record that was not written.
        #[test]
        fn a_damaged_segment_replays_a_prefix_of_what_was_written(
            n in 1i64..5,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            kind in 0u8..3,
        ) {
            let written: Vec<Calculation> = (0..n).map(|k| calc("c", k)).collect();
            let mut bytes = segment_of(&written);
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] ^= byte | 1,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
            if let Ok((records, damage)) = decode_segment(&bytes) {
                proptest::prop_assert!(records.len() <= written.len());
                for (k, (id, c)) in records.iter().enumerate() {
                    proptest::prop_assert_eq!(*id, k as CalcId + 1);
                    proptest::prop_assert_eq!(c, &written[k]);
                }
                // A cut exactly at a frame boundary leaves a shorter, intact segment: a
                // prefix, as a crash between two appends does. A changed or inserted byte
                // always shows as damage.
                let clean_cut = kind == 1 && segment_of(&written[..records.len()]).len() == bytes.len();
                proptest::prop_assert!(
                    damage.is_some() || records.len() == written.len() || bytes.is_empty() || clean_cut
                );
            }
        }
    }

    /// The same through the replay at open: what a damaged segment holds intact is replayed,
    /// the rest is dropped, and the journal opens.
    #[test]
    fn a_damaged_segment_opens_with_what_is_intact() {
        let written: Vec<Calculation> = (0..3).map(|k| calc("c", k)).collect();
        let clean = segment_of(&written);
        for i in (0..clean.len()).step_by(7) {
            let dir = tempfile::tempdir().unwrap();
            let jdir = Journal::dir_for(&dir.path().join("h.db"));
            std::fs::create_dir_all(&jdir).unwrap();
            let mut bytes = clean.clone();
            bytes[i] ^= 0x20;
            std::fs::write(segment_path(&jdir, 1), &bytes).unwrap();
            let mut got = Vec::new();
            let opened = Journal::open(
                &dir.path().join("h.db"),
                SqliteSync::Normal,
                0,
                &mut |rows| {
                    got.extend(rows.iter().map(|(id, c)| (*id, (*c).clone())));
                    Ok(())
                },
            );
            if i == SEGMENT_HEADER - 1 {
                assert!(
                    matches!(opened, Err(HistoryError::JournalFormat { .. })),
                    "byte {i}"
                );
                continue;
            }
            opened.unwrap();
            assert!(got.len() < written.len(), "byte {i}: the damage is seen");
            for (k, (id, c)) in got.iter().enumerate() {
                assert_eq!((*id, c), (k as CalcId + 1, &written[k]), "byte {i}");
            }
        }
    }

    #[test]
    fn one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _j) = replayed(dir.path(), SqliteSync::Normal);
        let second = Journal::open(&dir.path().join("h.db"), SqliteSync::Normal, 0, &mut |_| {
            Ok(())
        });
        assert!(matches!(second, Err(HistoryError::InUse(_))));
    }

    #[test]
    fn the_indexer_reads_back_across_segments_and_indexed_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Normal);
        let start = j.start();
        for n in 0..4 {
            j.append(&calc("c", n)).unwrap();
        }
        let jdir = Journal::dir_for(&dir.path().join("h.db"));
        j.seal().unwrap();
        j.append(&calc("c", 4)).unwrap();
        assert!(segment_path(&jdir, 1).exists() && segment_path(&jdir, 2).exists());
        assert!(j.has_unindexed());
        let (read, at) = j.read_from(start).unwrap();
        assert_eq!(
            read,
            (0..5).map(|n| (n + 1, calc("c", n))).collect::<Vec<_>>()
        );
        let (none, again) = j.read_from(at).unwrap();
        assert!(none.is_empty() && again == at, "caught up");
        j.indexed_upto(3).unwrap();
        assert!(segment_path(&jdir, 1).exists(), "id 4 is not indexed yet");
        j.indexed_upto(5).unwrap();
        assert!(!segment_path(&jdir, 1).exists());
        assert!(segment_path(&jdir, 2).exists(), "the active segment stays");
        assert!(!j.has_unindexed());
        j.append(&calc("c", 5)).unwrap();
        assert_eq!(j.read_from(at).unwrap().0, vec![(6, calc("c", 5))]);
    }

    #[test]
    fn the_indexer_starts_where_open_did_even_after_a_seal() {
        // The writer thread may ask for its start only after callers appended and an
        // erasure sealed: the sealed segment must still be read (CI saw an erasure count 0).
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Normal);
        for n in 0..3 {
            j.append(&calc("c", n)).unwrap();
        }
        j.seal().unwrap();
        let (read, _) = j.read_from(j.start()).unwrap();
        assert_eq!(
            read,
            (0..3).map(|n| (n + 1, calc("c", n))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_indexer_reads_at_most_a_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Normal);
        let mut at = j.start();
        let total = INDEX_BATCH + 7;
        for n in 0..total {
            j.append(&calc("c", n as i64)).unwrap();
        }
        let mut seen = 0;
        loop {
            let (read, next) = j.read_from(at).unwrap();
            if read.is_empty() {
                break;
            }
            assert!(read.len() <= INDEX_BATCH);
            assert_eq!(read[0].0, seen as i64 + 1, "in order, none skipped");
            seen += read.len();
            at = next;
        }
        assert_eq!(seen, total);
    }

    #[test]
    fn the_syncer_releases_waiters_and_stops_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j) = replayed(dir.path(), SqliteSync::Full);
        let j = Arc::new(j);
        let syncer = std::thread::spawn({
            let j = j.clone();
            move || j.run_syncer()
        });
        let id = j.append(&calc("c", 0)).unwrap();
        j.synced.wait_blocking(id).unwrap();
        j.shut_down();
        syncer.join().unwrap();
    }
}
