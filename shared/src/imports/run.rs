//! Creating an import, and running one: stream the uploaded file, upsert its rows, checkpoint.

use crate::ids::CategoryId;
use crate::ids::ImportId;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Handle;

use crate::Ports;
use crate::catalogue::requests::{CreateProduct, StockChange, UpdateProduct};
use crate::catalogue::{Product, Products, stock};
use crate::entity::{self, Stored};
use crate::error::{Error, Result};
use crate::events::{Event, EventType, ImportFinished};
use crate::imports::model::{Import, ImportStatus, ImportView, MAX_REJECTIONS_KEPT, Rejection};
use crate::imports::rows::{self, Row};
use crate::imports::{KEY_PREFIX, import_id_of};
use crate::keys;
use crate::metrics::{self, ImportedRow};
use crate::money::Money;
use crate::outbox::{self, Staged};
use crate::ports::store::{GSI1PK, GSI1SK};
use crate::ports::{BlobStore, Cond, PresignedRequest, StoreError, TxOp, Update};

/// How long a presigned upload URL stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(3600);
/// How long a run holds an import past its last checkpoint before another delivery of its
/// event may take it over.
pub const LEASE: Duration = Duration::from_secs(60);
/// The longest reason kept for a rejected line, and for a failed import: the import record
/// must stay far below DynamoDB's 400 KB item limit whatever the file holds.
const MAX_REASON_CHARS: usize = 200;
const MAX_ERROR_CHARS: usize = 1000;
/// Bytes read from blob storage at a time: the memory a run needs, whatever the file size.
const CHUNK_BYTES: u64 = 1024 * 1024;
/// A line longer than this stops the import (memory stays bounded even for a hostile file).
const MAX_LINE_BYTES: u64 = 1024 * 1024;
/// Progress is saved after this many rows, or this often.
const CHECKPOINT_ROWS: u64 = 500;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// The largest catalogue file accepted. The upload URL is signed for the exact size the admin
/// announces, so neither S3 nor the local server accepts a byte more.
pub const MAX_IMPORT_BYTES: u64 = 100 * 1024 * 1024;

/// Starts an import: records it and hands out the URL to upload the file to, signed for a
/// file of exactly `size` bytes.
#[tracing::instrument(target = "bazaar::span", name = "imports.create", skip_all)]
pub async fn create(
    ports: &Ports,
    file_name: Option<&str>,
    size: Option<u64>,
) -> Result<(Import, PresignedRequest)> {
    let file_name = file_name.map(str::trim).unwrap_or("catalogue.csv");
    if file_name.is_empty()
        || file_name.chars().count() > 100
        || file_name.contains('/')
        || file_name.starts_with('.')
        || file_name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "file_name",
            "must be 1 to 100 characters, without '/' or control characters",
        ));
    }
    let size = size
        .filter(|size| *size <= MAX_IMPORT_BYTES)
        .ok_or_else(|| {
            Error::invalid(
                "size",
                &format!("must be the file's size in bytes, at most {MAX_IMPORT_BYTES}"),
            )
        })?;
    let now = ports.clock.now();
    let id: ImportId = ports.ids.fresh();
    let import = Import {
        key: format!("{KEY_PREFIX}{id}/{file_name}"),
        id,
        status: ImportStatus::Pending,
        rows_read: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        rejected: Vec::new(),
        rejected_count: 0,
        error: None,
        checkpoint_offset: 0,
        checkpoint_line: 1,
        lease_until: 0,
        lease_version: 0,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    let upload = ports
        .blobs
        .presign_put(&import.key, "text/csv", Some(size), UPLOAD_URL_TTL)
        .await?;
    ports.store.put(import.to_item()?, Cond::NotExists).await?;
    Ok((import, upload))
}

#[tracing::instrument(target = "bazaar::span", name = "imports.get", skip_all)]
pub async fn get(ports: &Ports, id: &ImportId) -> Result<Import> {
    match ports.store.get(&keys::import(id)).await? {
        Some(item) => Import::from_item(item),
        None => Err(Error::NotFound("import")),
    }
}

/// The import an uploaded object's key names. The key came from the upload we presigned, so
/// its id is only looked up: an unknown one is simply not found.
fn import_of(key: &str) -> Result<ImportId> {
    import_id_of(key)
        .map(ImportId::trusted)
        .ok_or_else(|| Error::BadRequest(format!("{key} is not an import upload")))
}

/// Runs the import the uploaded object `key` belongs to. Safe to call again for the same
/// object (S3 delivers events at least once): a finished import is left alone, a running one
/// with a live lease too, and an abandoned one resumes from its checkpoint.
#[tracing::instrument(target = "bazaar::span", name = "imports.run", skip_all)]
pub async fn run(products: &Products, key: &str) -> Result<ImportView> {
    let ports = products.ports().clone();
    let id = &import_of(key)?;
    let mut import = get(&ports, id).await?;
    if import.key != key {
        return Err(Error::BadRequest(format!(
            "{key} is not the file of import {id}"
        )));
    }
    let now = ports.clock.now().timestamp();
    if matches!(import.status, ImportStatus::Done | ImportStatus::Failed) {
        return Ok(ImportView::from(&import));
    }
    if import.status == ImportStatus::Running && import.lease_until > now {
        // Another run holds it, or held it and died: fail, so that the event is delivered
        // again later and, once the lease has lapsed, resumes from the checkpoint.
        return Err(Error::conflict(format!(
            "import {id} is held by another run for {} more seconds",
            import.lease_until - now
        )));
    }
    // Take the lease: only one run at a time moves an import on.
    import.status = ImportStatus::Running;
    import.lease_until = now + LEASE.as_secs() as i64;
    let taken = ports
        .store
        .update(
            &keys::import(id),
            vec![
                Update::set(Import::STATUS, json!(ImportStatus::Running)),
                Update::set(Import::LEASE_UNTIL, import.lease_until),
                Update::add(Import::LEASE_VERSION, 1),
                // Listed among the running imports, where the sweeper finds it if this run
                // dies; the same write, so no running import is ever unlisted.
                Update::set(GSI1PK, keys::RUNNING_IMPORTS_PARTITION),
                Update::set(GSI1SK, import.id.clone()),
            ],
            Cond::eq(Import::LEASE_VERSION, import.lease_version),
        )
        .await;
    match taken {
        Ok(_) => import.lease_version += 1,
        Err(StoreError::ConditionFailed) => {
            return Err(Error::conflict(format!(
                "import {id} was taken by another run"
            )));
        }
        Err(other) => return Err(other.into()),
    }

    let handle = Handle::current();
    let products = products.clone();
    let finished = tokio::task::spawn_blocking(move || Runner::new(products, import, handle).run())
        .await
        .map_err(|error| Error::Internal(format!("import task failed: {error}")))??;
    Ok(ImportView::from(&finished))
}

/// A blocking `Read` over an object, fetched a chunk at a time with ranged reads. It refuses
/// to hand out more than [`MAX_LINE_BYTES`] past the start of the current record.
struct RangeReader {
    blobs: Arc<dyn BlobStore>,
    handle: Handle,
    key: String,
    next_offset: u64,
    buffer: Vec<u8>,
    position: usize,
    done: bool,
    /// Bytes handed out since the start of the read, and where the current record began.
    handed_out: u64,
    record_start: u64,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.buffer.len() && !self.done {
            let chunk = self
                .handle
                .block_on(
                    self.blobs
                        .get_range(&self.key, self.next_offset, CHUNK_BYTES),
                )
                .map_err(|error| std::io::Error::other(error.to_string()))?
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "the uploaded file is gone")
                })?;
            self.done = chunk.is_empty();
            self.next_offset += chunk.len() as u64;
            self.buffer = chunk;
            self.position = 0;
        }
        if self.handed_out - self.record_start > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let n = out.len().min(self.buffer.len() - self.position);
        out[..n].copy_from_slice(&self.buffer[self.position..self.position + n]);
        self.position += n;
        self.handed_out += n as u64;
        Ok(n)
    }
}

/// What a row did.
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

struct Runner {
    products: Products,
    import: Import,
    handle: Handle,
    categories: HashMap<String, CategoryId>,
}

impl Runner {
    fn new(products: Products, import: Import, handle: Handle) -> Self {
        Self {
            products,
            import,
            handle,
            categories: HashMap::new(),
        }
    }

    fn ports(&self) -> &Ports {
        self.products.ports()
    }

    fn run(mut self) -> Result<Import> {
        let base_offset = self.import.checkpoint_offset;
        let base_line = self.import.checkpoint_line;
        let mut reader = self.reader_from(base_offset);
        let mut record = csv::ByteRecord::new();
        let mut header_pending = base_offset == 0;
        let (mut since_checkpoint, mut last_checkpoint) = (0u64, Instant::now());
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => {
                    return self.finish(Some(format!("the file cannot be read: {error}")));
                }
            }
            let line = file_line(base_line, record.position().map(csv::Position::line));
            let next = reader.position().clone();
            reader.get_mut().record_start = next.byte();
            if header_pending {
                header_pending = false;
                if let Err(reason) = rows::check_header(&record) {
                    return self.finish(Some(reason));
                }
            } else {
                self.import_row(&record, line)?;
            }
            self.import.checkpoint_offset = base_offset + next.byte();
            self.import.checkpoint_line = file_line(base_line, Some(next.line()));
            since_checkpoint += 1;
            if checkpoint_due(since_checkpoint, last_checkpoint.elapsed()) {
                self.handle.clone().block_on(self.checkpoint())?;
                (since_checkpoint, last_checkpoint) = (0, Instant::now());
            }
        }
        if header_pending {
            return self.finish(Some("the file is empty".to_owned()));
        }
        self.finish(None)
    }

    /// A CSV reader over the uploaded file from `offset` on (a checkpoint, or its start).
    fn reader_from(&self, offset: u64) -> csv::Reader<RangeReader> {
        let source = RangeReader {
            blobs: self.ports().blobs.clone(),
            handle: self.handle.clone(),
            key: self.import.key.clone(),
            next_offset: offset,
            buffer: Vec::new(),
            position: 0,
            done: false,
            handed_out: 0,
            record_start: 0,
        };
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(source)
    }

    /// Upserts the product of one data row at `line`, or rejects the row; counts either.
    /// Fails only when the store does (the import stops).
    fn import_row(&mut self, record: &csv::ByteRecord, line: u64) -> Result<()> {
        self.import.rows_read += 1;
        let row = match rows::parse(record) {
            Ok(row) => row,
            Err(reason) => {
                self.reject(line, reason);
                return Ok(());
            }
        };
        match self.handle.clone().block_on(self.upsert(&row))? {
            Ok(Outcome::Created) => {
                self.import.created += 1;
                metrics::import_row(ImportedRow::Created);
            }
            Ok(Outcome::Updated) => {
                self.import.updated += 1;
                metrics::import_row(ImportedRow::Updated);
            }
            Ok(Outcome::Unchanged) => {
                self.import.unchanged += 1;
                metrics::import_row(ImportedRow::Unchanged);
            }
            Err(reason) => self.reject(line, reason),
        }
        Ok(())
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.import.rejected_count += 1;
        metrics::import_row(ImportedRow::Rejected);
        if self.import.rejected.len() < MAX_REJECTIONS_KEPT {
            let reason = clip(&reason, MAX_REASON_CHARS);
            self.import.rejected.push(Rejection { line, reason });
        }
    }

    /// The writes that save progress, conditional on still holding the lease.
    fn progress(&self) -> Vec<Update> {
        let now = self.ports().clock.now();
        let import = &self.import;
        vec![
            Update::set(Import::ROWS_READ, import.rows_read),
            Update::set(Import::CREATED, import.created),
            Update::set(Import::UPDATED, import.updated),
            Update::set(Import::UNCHANGED, import.unchanged),
            Update::set(Import::REJECTED, json!(import.rejected)),
            Update::set(Import::REJECTED_COUNT, import.rejected_count),
            Update::set(Import::CHECKPOINT_OFFSET, import.checkpoint_offset),
            Update::set(Import::CHECKPOINT_LINE, import.checkpoint_line),
            Update::set(
                Import::LEASE_UNTIL,
                now.timestamp() + LEASE.as_secs() as i64,
            ),
            Update::set(Import::UPDATED_AT, entity::timestamp(now)),
        ]
    }

    async fn checkpoint(&self) -> Result<()> {
        let updated = self
            .ports()
            .store
            .update(
                &keys::import(&self.import.id),
                self.progress(),
                Cond::eq(Import::LEASE_VERSION, self.import.lease_version),
            )
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed) => {
                Err(Error::conflict("another run took the import over"))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Ends the import (failed when `error` says why) and publishes `IMPORT_FINISHED` in the
    /// same transaction.
    fn finish(mut self, error: Option<String>) -> Result<Import> {
        let now = self.ports().clock.now();
        self.import.status = if error.is_some() {
            ImportStatus::Failed
        } else {
            ImportStatus::Done
        };
        self.import.error = error.map(|error| clip(&error, MAX_ERROR_CHARS));
        self.import.finished_at = Some(now);
        let data = ImportFinished {
            import_id: self.import.id.clone(),
            status: self.import.status,
            rows_read: self.import.rows_read,
            created: self.import.created,
            updated: self.import.updated,
            unchanged: self.import.unchanged,
            rejected_count: self.import.rejected_count,
            error: self.import.error.clone(),
        };
        let event = Event::typed(
            EventType::ImportFinished,
            &data,
            &self.import.id,
            self.ports().ids.as_ref(),
            self.ports().clock.as_ref(),
        )?;
        let staged = Staged::new(outbox::NOTIFICATIONS_QUEUE, event);
        let mut updates = self.progress();
        updates.push(Update::set(Import::STATUS, json!(self.import.status)));
        updates.push(Update::set(Import::ERROR, json!(self.import.error)));
        updates.push(Update::set(Import::FINISHED_AT, entity::timestamp(now)));
        // No longer running: off the sweeper's list, in the same write.
        updates.push(Update::Remove(GSI1PK.to_owned()));
        updates.push(Update::Remove(GSI1SK.to_owned()));
        let ops = vec![
            TxOp::Update {
                key: keys::import(&self.import.id),
                updates,
                cond: Cond::eq(Import::LEASE_VERSION, self.import.lease_version),
            },
            staged.write(self.ports().shards)?,
        ];
        let ports = self.ports().clone();
        self.handle.block_on(async {
            match ports.store.transact(ops).await {
                Ok(()) => {
                    outbox::deliver(&ports, &[staged]).await;
                    Ok(())
                }
                Err(StoreError::TransactionCancelled { .. }) => {
                    Err(Error::conflict("another run took the import over"))
                }
                Err(other) => Err(other.into()),
            }
        })?;
        Ok(self.import)
    }

    /// Creates or updates the product of a row. The outer error stops the import (the store
    /// failed); the inner one rejects the row.
    async fn upsert(&mut self, row: &Row) -> Result<std::result::Result<Outcome, String>> {
        let category_id = match &row.category {
            Some(slug) => Some(self.category(slug).await?),
            None => None,
        };
        for _ in 0..3 {
            let existing = self.products.by_sku(&row.sku).await?;
            let outcome = match existing {
                None => self.create(row, &category_id).await,
                Some(product) if !product.is_active() => {
                    return Ok(Err(format!(
                        "SKU {} belongs to an archived product",
                        row.sku
                    )));
                }
                Some(product) if row.stock < product.reserved => {
                    return Ok(Err(format!(
                        "stock {} is below the {} units reserved by unpaid orders",
                        row.stock, product.reserved
                    )));
                }
                Some(product) => self.update(product, row, &category_id).await,
            };
            match outcome {
                // Another writer got there between the read and the write: read again.
                Err(Error::Conflict { .. }) => continue,
                Err(Error::Validation(fields)) => {
                    let reasons: Vec<String> = fields
                        .iter()
                        .map(|f| format!("{} {}", f.field, f.message))
                        .collect();
                    return Ok(Err(reasons.join("; ")));
                }
                other => return other.map(Ok),
            }
        }
        Ok(Err(format!(
            "SKU {} kept changing while it was imported",
            row.sku
        )))
    }

    async fn category(&mut self, slug: &str) -> Result<CategoryId> {
        if let Some(id) = self.categories.get(slug) {
            return Ok(id.clone());
        }
        let category = self.products.categories().ensure_slug(slug, slug).await?;
        if self.categories.len() < 10_000 {
            self.categories.insert(slug.to_owned(), category.id.clone());
        }
        Ok(category.id)
    }

    async fn create(&self, row: &Row, category_id: &Option<CategoryId>) -> Result<Outcome> {
        let request = CreateProduct {
            sku: Some(row.sku.clone()),
            name: Some(row.name.clone()),
            description: Some(row.description.clone()),
            category_id: category_id.as_ref().map(CategoryId::to_string),
            price: Some(money(row)),
            stock: Some(row.stock),
        };
        self.products
            .create(request)
            .await
            .map(|_| Outcome::Created)
    }

    async fn update(
        &self,
        product: Product,
        row: &Row,
        category_id: &Option<CategoryId>,
    ) -> Result<Outcome> {
        let same_fields = product.name == row.name
            && product.description == row.description
            && &product.category_id == category_id
            && product.price == money(row);
        let on_hand = product.available + product.reserved;
        if same_fields && on_hand == row.stock {
            return Ok(Outcome::Unchanged);
        }
        if !same_fields {
            let request = UpdateProduct {
                name: Some(row.name.clone()),
                description: Some(row.description.clone()),
                category_id: Some(category_id.as_ref().map(CategoryId::to_string)),
                price: Some(money(row)),
                version: Some(product.version),
                sku: None,
            };
            self.products.update(&product.id, request, None).await?;
        }
        if on_hand != row.stock {
            let change = StockChange {
                set: Some(row.stock),
                adjust: None,
            };
            stock::change(&self.products, &product.id, change, &self.import.id).await?;
        }
        Ok(Outcome::Updated)
    }
}

/// The line of the file that a reader's line `read` is (1 for the first line it reads): a run
/// resumed at a checkpoint reads from the checkpoint's line `base_line` on.
fn file_line(base_line: u64, read: Option<u64>) -> u64 {
    base_line + read.unwrap_or(1) - 1
}

/// Whether progress is due to be saved, after `rows` rows and `elapsed` since it last was.
fn checkpoint_due(rows: u64, elapsed: Duration) -> bool {
    rows >= CHECKPOINT_ROWS || elapsed >= CHECKPOINT_EVERY
}

/// At most `max` characters of `text`, marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

fn money(row: &Row) -> Money {
    Money {
        amount: row.price,
        currency: row.currency.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_the_checkpoint_a_run_resumes_at() {
        assert_eq!(file_line(1, Some(1)), 1);
        assert_eq!(file_line(1, Some(7)), 7);
        assert_eq!(file_line(1, None), 1);
        // Resumed at line 500: the reader's first line is the file's line 500.
        assert_eq!(file_line(500, Some(1)), 500);
        assert_eq!(file_line(500, Some(3)), 502);
        assert_eq!(file_line(500, None), 500);
    }

    #[test]
    fn progress_is_saved_every_so_many_rows_or_seconds() {
        assert!(!checkpoint_due(0, Duration::ZERO));
        assert!(!checkpoint_due(
            CHECKPOINT_ROWS - 1,
            CHECKPOINT_EVERY - Duration::from_millis(1)
        ));
        assert!(checkpoint_due(CHECKPOINT_ROWS, Duration::ZERO));
        assert!(checkpoint_due(1, CHECKPOINT_EVERY));
    }

    #[test]
    fn long_reasons_are_clipped_on_character_boundaries() {
        assert_eq!(clip("short", 10), "short");
        let long = "ک".repeat(500);
        let clipped = clip(&long, 200);
        assert_eq!(clipped.chars().count(), 200);
        assert!(clipped.ends_with('…'));
    }
}
