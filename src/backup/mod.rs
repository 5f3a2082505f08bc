//! Catalog export and import (the original's `export_video_data` and its admin's import): the
//! use cases the CLI, the scheduler and the admin API share.

mod checks;
mod export;
mod format;
mod import;

use std::{collections::HashMap, path::PathBuf};

pub use export::{Written, file_name, is_export_name};
pub use format::{FULL_FORMAT, FULL_VERSION, rfc3339};
pub use import::{Counts, Preview, RecordError};

use crate::store::{Store, Timestamp};

/// Export and import over one store; cheap to clone.
#[derive(Clone)]
pub struct Backups {
    store: Store,
    dir: PathBuf,
}

/// How an import ended.
#[derive(Debug)]
pub enum Imported {
    /// Written (or, dry, would be): the counts.
    Done(Preview),
    /// Bad records: nothing was written.
    Rejected(Vec<RecordError>),
}

impl Backups {
    /// Exports go to `dir` unless told otherwise.
    pub fn new(store: Store, dir: PathBuf) -> Self {
        Self { store, dir }
    }

    /// The default export folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes an export now into `dir` (default: the export folder).
    pub async fn export(
        &self,
        dir: Option<&std::path::Path>,
        full: bool,
    ) -> anyhow::Result<Written> {
        let dir = dir.unwrap_or(&self.dir);
        let written = export::write(&self.store, dir, full, Timestamp::now()).await?;
        tracing::info!(
            path = %written.path.display(),
            videos = written.videos,
            users = written.users,
            "export written"
        );
        Ok(written)
    }

    /// Checks `bytes` (either export format) and, unless `dry_run` or a record is bad, writes
    /// it in one transaction; then every process's catalog cache is invalidated.
    pub async fn import(
        &self,
        bytes: &[u8],
        dry_run: bool,
        user_map: &HashMap<i64, i64>,
    ) -> anyhow::Result<Imported> {
        let plan = match import::plan(&self.store, bytes, user_map).await? {
            Ok(plan) => plan,
            Err(errors) => return Ok(Imported::Rejected(errors)),
        };
        if !dry_run && plan.preview.changes_anything() {
            self.store.apply_import(&plan.writes).await?;
            tracing::info!(preview = ?plan.preview, "import applied");
        }
        Ok(Imported::Done(plan.preview))
    }
}
