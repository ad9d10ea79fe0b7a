//! Where a job keeps the rows of its lookup tables: in memory up to a budget, then in an
//! embedded [redb](https://docs.rs/redb) database on local disk. The files are made by
//! [`create_store`], which the window join's store (`crate::window`) uses too.
//!
//! Rows are kept as the JSON bytes the table topic holds and parsed when looked up, packed
//! into large buffers behind a hash index of positions ([`packed`]), so the memory a table
//! takes is close to its size in Kafka rather than the several times more a parsed document
//! (or even a map of boxed rows) takes. A table that outgrows the budget moves to disk as a whole and stays
//! there for the job's life: lookups then read a B-tree through the page cache, and changes
//! are buffered and written in one transaction per batch.
//!
//! The store is a cache of the table topics, never their record: a job rebuilds it from
//! Kafka whenever it starts, so the database is created empty for each run, written without
//! waiting for the disk (`Durability::None`), and deleted when the job ends.

mod packed;

use std::collections::HashMap;
use std::path::PathBuf;

use packed::PackedRows;

use redb::{Database, ReadOnlyTable, ReadableDatabase, TableDefinition};
use serde_json::Value as Json;

/// The one redb table: `alias \0 key` → row JSON.
const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");
/// Changes buffered before they are written to disk.
const PENDING_MAX: usize = 10_000;
/// Bytes counted per row besides its key and value (map entry, boxes).
const ROW_OVERHEAD: usize = 48;

/// How much memory a job's tables may take before they go to disk, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The directory of the on-disk store (a file per job run, removed when it ends).
    pub dir: PathBuf,
    /// Bytes of table rows kept in memory before they move to disk; a window join's records
    /// and `propagate`'s state each have a budget of the same size of their own.
    pub memory_bytes: usize,
}

impl Default for StateSettings {
    /// The system's temporary directory; 256 MiB in memory.
    fn default() -> Self {
        StateSettings {
            dir: std::env::temp_dir().join("sluice-state"),
            memory_bytes: 256 << 20,
        }
    }
}

/// Why the table store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The on-disk store could not be created, read or written.
    #[error("the on-disk table store at {path}: {reason}")]
    Disk {
        /// Its file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The on-disk part: the database, the changes not written yet and a reader of the last
/// written state.
struct Disk {
    db: Database,
    path: PathBuf,
    /// `alias \0 key` → the row, or `None` for a removed one.
    pending: HashMap<String, Option<Box<[u8]>>>,
    reader: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The rows of a job's lookup tables, by alias and join key.
pub(crate) struct TableRows {
    memory: HashMap<String, PackedRows>,
    /// Bytes the rows in memory take, roughly.
    bytes: usize,
    settings: StateSettings,
    /// Names the database file.
    label: String,
    disk: Option<Disk>,
}

impl std::fmt::Debug for TableRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableRows")
            .field("bytes", &self.bytes)
            .field("on_disk", &self.disk.is_some())
            .finish_non_exhaustive()
    }
}

/// `label` made fit for a file name: every character but ASCII letters and digits becomes `_`.
pub(crate) fn file_label(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Creates an empty database for the store `label` (see [`file_label`]) in the settings'
/// directory, named `<label>-<pid>-<nanos>.redb`, after removing the stores of `label` that
/// processes which no longer run left behind. The caller removes the file when done.
pub(crate) fn create_store(
    settings: &StateSettings,
    label: &str,
) -> Result<(Database, PathBuf), StateError> {
    let path = settings.dir.join(format!(
        "{label}-{}-{:x}.redb",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    // Clones the path: it is moved out at the end, past this closure's last use.
    let fail = |e: &dyn std::fmt::Display| StateError::Disk {
        path: path.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&settings.dir).map_err(|e| fail(&e))?;
    remove_orphans(&settings.dir, label);
    let db = Database::create(&path).map_err(|e| fail(&e))?;
    Ok((db, path))
}

/// A database file of a job's state written through one write transaction that stays open
/// across changes (it reads its own writes) until [`WriteStore::commit`]; the file is removed
/// when this is dropped. The window join's records and `propagate`'s state use it.
pub(crate) struct WriteStore {
    /// The open write transaction, if any change was made since the last commit.
    write: Option<redb::WriteTransaction>,
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for WriteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for WriteStore {
    fn drop(&mut self) {
        // An uncommitted transaction is dropped first (redb aborts it), then the file goes.
        self.write = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A redb failure, named with the store's file.
pub(crate) fn failed(path: &std::path::Path) -> impl Fn(&dyn std::fmt::Display) -> StateError + '_ {
    move |e| StateError::Disk {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl WriteStore {
    /// An empty store in the settings' directory; `label` (see [`file_label`]) names it.
    pub(crate) fn create(settings: &StateSettings, label: &str) -> Result<Self, StateError> {
        let (db, path) = create_store(settings, label)?;
        Ok(WriteStore {
            write: None,
            db,
            path,
        })
    }

    /// The open write transaction (begun, not waiting for the disk, when there is none) and
    /// the file, for naming failures.
    pub(crate) fn open(
        &mut self,
    ) -> Result<(&redb::WriteTransaction, &std::path::Path), StateError> {
        let write = match self.write.take() {
            Some(write) => write,
            None => {
                let fail = failed(&self.path);
                let mut write = self.db.begin_write().map_err(|e| fail(&e))?;
                write
                    .set_durability(redb::Durability::None)
                    .map_err(|e| fail(&e))?;
                write
            }
        };
        Ok((self.write.insert(write), &self.path))
    }

    /// Commits the changes made since the last commit (without waiting for the disk).
    pub(crate) fn commit(&mut self) -> Result<(), StateError> {
        if let Some(write) = self.write.take() {
            write.commit().map_err(|e| failed(&self.path)(&e))?;
        }
        Ok(())
    }

    /// The database file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Removes the store files of `label` in `dir` left by processes that died without removing
/// them (only files of processes that no longer run are removed, so a live sibling slice
/// keeps its own).
fn remove_orphans(dir: &std::path::Path, label: &str) {
    let proc = std::path::Path::new("/proc");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    if !proc.is_dir() {
        return;
    }
    let prefix = format!("{label}-");
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && name.ends_with(".redb")
            && !proc.join(pid.to_string()).exists()
        {
            tracing::info!(file = %entry.path().display(), "removing a dead job's state store");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn composite(alias: &str, key: &str) -> String {
    let mut k = String::with_capacity(alias.len() + key.len() + 1);
    k.push_str(alias);
    k.push('\0');
    k.push_str(key);
    k
}

impl TableRows {
    /// An empty store; `label` names its database file should it need one.
    pub(crate) fn new(settings: StateSettings, label: &str) -> Self {
        TableRows {
            memory: HashMap::new(),
            bytes: 0,
            settings,
            label: file_label(label),
            disk: None,
        }
    }

    /// Whether the rows moved to disk.
    pub(crate) fn on_disk(&self) -> bool {
        self.disk.is_some()
    }

    /// Bytes the rows in memory take, roughly (0 once on disk).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.bytes
    }

    /// Sets the row of `key` in table `alias`.
    pub(crate) fn put(&mut self, alias: &str, key: &str, row: &[u8]) -> Result<(), StateError> {
        if let Some(disk) = &mut self.disk {
            disk.pending.insert(composite(alias, key), Some(row.into()));
            return self.flush_if_full();
        }
        let rows = self.memory.entry(alias.to_owned()).or_default();
        if let Some(old) = rows.insert(key, row) {
            self.bytes = self.bytes.saturating_sub(old + key.len() + ROW_OVERHEAD);
        }
        self.bytes += row.len() + key.len() + ROW_OVERHEAD;
        if self.bytes > self.settings.memory_bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Removes the row of `key` from table `alias`.
    pub(crate) fn remove(&mut self, alias: &str, key: &str) -> Result<(), StateError> {
        if let Some(disk) = &mut self.disk {
            disk.pending.insert(composite(alias, key), None);
            return self.flush_if_full();
        }
        if let Some(old) = self.memory.get_mut(alias).and_then(|rows| rows.remove(key)) {
            self.bytes = self.bytes.saturating_sub(old + key.len() + ROW_OVERHEAD);
        }
        Ok(())
    }

    /// The row of `key` in table `alias`, parsed (with only the top-level `fields`, when
    /// `Some` and the row is an object); `None` when it has none (or it is not JSON, which a
    /// table row written by [`TableRows::put`] always is).
    pub(crate) fn get(
        &self,
        alias: &str,
        key: &str,
        fields: Option<&[String]>,
    ) -> Result<Option<Json>, StateError> {
        let parse = |bytes: &[u8]| crate::projected::parse(bytes, fields).ok();
        let Some(disk) = &self.disk else {
            return Ok(self
                .memory
                .get(alias)
                .and_then(|rows| rows.get(key))
                .and_then(&parse));
        };
        let k = composite(alias, key);
        if let Some(pending) = disk.pending.get(&k) {
            return Ok(pending.as_deref().and_then(parse));
        }
        let found = disk
            .reader
            .get(k.as_str())
            .map_err(|e| self.disk_error(e))?;
        Ok(found.and_then(|guard| parse(guard.value())))
    }

    /// Writes the buffered changes to disk (nothing to do while the rows are in memory).
    pub(crate) fn flush(&mut self) -> Result<(), StateError> {
        let Some(disk) = &mut self.disk else {
            return Ok(());
        };
        if disk.pending.is_empty() {
            return Ok(());
        }
        let path = disk.path.clone();
        let fail = failed(&path);
        let mut write = disk.db.begin_write().map_err(|e| fail(&e))?;
        write
            .set_durability(redb::Durability::None)
            .map_err(|e| fail(&e))?;
        {
            let mut table = write.open_table(ROWS).map_err(|e| fail(&e))?;
            for (k, row) in disk.pending.drain() {
                match row {
                    Some(row) => {
                        table.insert(k.as_str(), &*row).map_err(|e| fail(&e))?;
                    }
                    None => {
                        table.remove(k.as_str()).map_err(|e| fail(&e))?;
                    }
                }
            }
        }
        write.commit().map_err(|e| fail(&e))?;
        disk.reader = disk
            .db
            .begin_read()
            .map_err(|e| fail(&e))?
            .open_table(ROWS)
            .map_err(|e| fail(&e))?;
        Ok(())
    }

    fn flush_if_full(&mut self) -> Result<(), StateError> {
        if self
            .disk
            .as_ref()
            .is_some_and(|d| d.pending.len() >= PENDING_MAX)
        {
            self.flush()?;
        }
        Ok(())
    }

    fn disk_error(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Disk {
            path: self
                .disk
                .as_ref()
                .map(|d| d.path.clone())
                .unwrap_or_default(),
            reason: e.to_string(),
        }
    }

    /// Moves every row to a new database on disk.
    fn spill(&mut self) -> Result<(), StateError> {
        let (db, path) = create_store(&self.settings, &self.label)?;
        let fail = |e: &dyn std::fmt::Display| StateError::Disk {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut write = db.begin_write().map_err(|e| fail(&e))?;
        write
            .set_durability(redb::Durability::None)
            .map_err(|e| fail(&e))?;
        {
            let mut table = write.open_table(ROWS).map_err(|e| fail(&e))?;
            for (alias, rows) in self.memory.drain() {
                for (key, row) in rows.iter() {
                    let key = String::from_utf8_lossy(key);
                    table
                        .insert(composite(&alias, &key).as_str(), row)
                        .map_err(|e| fail(&e))?;
                }
            }
        }
        write.commit().map_err(|e| fail(&e))?;
        let reader = db
            .begin_read()
            .map_err(|e| fail(&e))?
            .open_table(ROWS)
            .map_err(|e| fail(&e))?;
        tracing::info!(path = %path.display(), bytes = self.bytes, "lookup tables moved to disk");
        self.bytes = 0;
        self.memory = HashMap::new();
        self.disk = Some(Disk {
            db,
            path,
            pending: HashMap::new(),
            reader,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn settings(dir: &std::path::Path, memory_bytes: usize) -> StateSettings {
        StateSettings {
            dir: dir.to_owned(),
            memory_bytes,
        }
    }

    fn row(n: usize) -> Vec<u8> {
        json!({"id": format!("c-{n}"), "name": format!("name-{n}"), "tier": "gold"})
            .to_string()
            .into_bytes()
    }

    /// The same changes give the same lookups in memory and after moving to disk, and the
    /// database file is gone when the store is dropped.
    #[test]
    fn rows_read_the_same_in_memory_and_on_disk() {
        let dir = std::env::temp_dir().join(format!("sluice-state-test-{}", std::process::id()));
        // A store left by a process that no longer runs goes; one of a live process stays.
        std::fs::create_dir_all(&dir).unwrap();
        let orphan = dir.join("job_a_b_v1-4000000000-1.redb");
        let live = dir.join(format!("job_a_b_v1-{}-1.redb", std::process::id()));
        std::fs::write(&orphan, b"").unwrap();
        std::fs::write(&live, b"").unwrap();
        let mut small = TableRows::new(settings(&dir, 20_000), "job a/b v1");
        let mut large = TableRows::new(settings(&dir, usize::MAX), "job");
        for store in [&mut small, &mut large] {
            for n in 0..30_000 {
                store.put("c", &format!("c-{n}"), &row(n)).unwrap();
            }
            for n in (0..30_000).step_by(3) {
                store.remove("c", &format!("c-{n}")).unwrap();
            }
            store.put("c", "c-1", &row(7)).unwrap();
            store.put("other", "c-1", b"{\"x\":1}").unwrap();
        }
        assert!(small.on_disk() && !large.on_disk());
        assert!(!orphan.exists() && live.exists());
        std::fs::remove_file(&live).unwrap();
        assert_eq!(small.memory_bytes(), 0);
        assert!(large.memory_bytes() > 20_000);
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with("job_a_b_v1-"))
            .unwrap()
            .path();
        // Before and after the buffered changes are written.
        for round in 0..2 {
            for key in ["c-0", "c-1", "c-2", "c-29999", "c-30000"] {
                assert_eq!(
                    small.get("c", key, None).unwrap(),
                    large.get("c", key, None).unwrap(),
                    "{key} in round {round}"
                );
            }
            assert_eq!(
                small.get("c", "c-1", None).unwrap().unwrap()["name"],
                "name-7"
            );
            assert_eq!(small.get("c", "c-3", None).unwrap(), None);
            assert_eq!(
                small.get("other", "c-1", None).unwrap(),
                Some(json!({"x": 1}))
            );
            assert_eq!(small.get("other", "c-2", None).unwrap(), None);
            small.flush().unwrap();
        }
        assert!(file.exists());
        drop(small);
        assert!(!file.exists());
    }
}
