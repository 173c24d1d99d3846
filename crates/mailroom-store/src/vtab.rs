//! `mailroom_rows(token)`: a table-valued function through which SQLite reads the rows
//! of a chunk straight from this process's memory, one field per column, instead of
//! unpacking a JSONB blob per row with `->>` (a lookup per field: about a fifth of the
//! instructions of a Graph initial sync into SQLite, docs/benchmarks.md, round 7).
//!
//! The rows are registered under a token ([`Registered`]) that the statement binds as
//! its parameter; the virtual table's cursor holds the rows while SQLite reads them, so
//! a statement that outlives its caller (a future dropped while sqlx's worker thread
//! still runs it) still reads valid memory, and a token no longer registered is an
//! error, not a read.
//!
//! This is the workspace's one module of `unsafe` code: SQLite's virtual table interface
//! is C callbacks over raw pointers. Every callback touches only the table or cursor
//! SQLite hands it, and none can panic.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use libsqlite3_sys as ffi;
use sea_orm::sqlx::sqlite::SqliteConnection;

use crate::bulk::Field;

/// The name SQL calls it by, as a macro so that `concat!` can build the statements
/// and C strings that spell it.
macro_rules! name {
    () => {
        "mailroom_rows"
    };
}
pub(crate) use name;

/// The name SQL calls it by.
pub(crate) const NAME: &str = name!();

/// [`NAME`] for SQLite's C interface.
const C_NAME: &CStr = match CStr::from_bytes_with_nul(concat!(name!(), "\0").as_bytes()) {
    Ok(name) => name,
    Err(_) => panic!("the module name has no NUL"),
};

/// Value columns `c0` … `c15`; the hidden column `rows` takes the token.
pub(crate) const COLUMNS: usize = 16;

/// One field.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Null,
    Int(i64),
    /// A range of [`Rows::text`].
    Text {
        start: usize,
        len: usize,
    },
}

/// The rows of a chunk: `columns` cells per row, texts in one buffer.
#[derive(Debug)]
pub(crate) struct Rows {
    columns: usize,
    cells: Vec<Cell>,
    text: String,
}

impl Rows {
    pub(crate) fn with_capacity(columns: usize, rows: usize, text: usize) -> Rows {
        assert!(columns > 0 && columns <= COLUMNS);
        Rows {
            columns,
            cells: Vec::with_capacity(columns * rows),
            text: String::with_capacity(text),
        }
    }

    /// Appends a field to the last row (a row is complete after `columns` fields).
    /// A boolean is stored as 0 or 1, as SQLite stores a bound boolean.
    pub(crate) fn push(&mut self, field: Field<'_>) {
        let cell = match field {
            Field::Null => Cell::Null,
            Field::Bool(b) => Cell::Int(i64::from(b)),
            Field::Int(i) => Cell::Int(i),
            Field::Text(t) => {
                let start = self.text.len();
                self.text.push_str(&t);
                Cell::Text {
                    start,
                    len: t.len(),
                }
            }
        };
        self.cells.push(cell);
    }

    /// Rows complete so far.
    pub(crate) fn len(&self) -> usize {
        self.cells.len() / self.columns
    }

    /// Bytes of text held.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    fn cell(&self, row: usize, column: usize) -> Cell {
        if column >= self.columns {
            return Cell::Null;
        }
        self.cells
            .get(row * self.columns + column)
            .copied()
            .unwrap_or(Cell::Null)
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<i64, Arc<Rows>>>> = LazyLock::new(Default::default);
static NEXT_TOKEN: AtomicI64 = AtomicI64::new(1);

fn registry() -> MutexGuard<'static, HashMap<i64, Arc<Rows>>> {
    // The map is left consistent by every holder: a poisoned lock is still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Rows readable as `mailroom_rows(token)` until this is dropped.
#[derive(Debug)]
pub(crate) struct Registered(i64);

impl Registered {
    pub(crate) fn new(rows: Rows) -> Registered {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        registry().insert(token, Arc::new(rows));
        Registered(token)
    }

    /// The statement parameter that names these rows.
    pub(crate) fn param(&self) -> sea_orm::Value {
        sea_orm::Value::BigInt(Some(self.0))
    }

    /// How many rows are registered.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> usize {
        registry().get(&self.0).map_or(0, |r| r.len())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        registry().remove(&self.0);
    }
}

/// Makes `mailroom_rows` available on `conn` (run once per new connection).
pub(crate) async fn register(conn: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db: NonNull<ffi::sqlite3> = handle.as_raw_handle();
    // SAFETY: `db` is the open connection `handle` keeps locked for this call; the
    // module is a `static`, so it outlives the connection, and its name is copied by
    // SQLite.
    let rc = unsafe {
        ffi::sqlite3_create_module_v2(
            db.as_ptr(),
            C_NAME.as_ptr(),
            &MODULE,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sea_orm::sqlx::Error::Configuration(
            format!("cannot register SQLite module {NAME} (error {rc})").into(),
        ))
    }
}

/// An eponymous-only virtual table (`xCreate` is null): usable as `mailroom_rows(?)`
/// without `CREATE VIRTUAL TABLE`, read-only.
static MODULE: ffi::sqlite3_module = ffi::sqlite3_module {
    iVersion: 0,
    xCreate: None,
    xConnect: Some(connect),
    xBestIndex: Some(best_index),
    xDisconnect: Some(disconnect),
    xDestroy: Some(disconnect),
    xOpen: Some(open),
    xClose: Some(close),
    xFilter: Some(filter),
    xNext: Some(next),
    xEof: Some(eof),
    xColumn: Some(column),
    xRowid: Some(rowid),
    xUpdate: None,
    xBegin: None,
    xSync: None,
    xCommit: None,
    xRollback: None,
    xFindFunction: None,
    xRename: None,
    xSavepoint: None,
    xRelease: None,
    xRollbackTo: None,
    xShadowName: None,
    xIntegrity: None,
};

/// The hidden column's index.
const HIDDEN: c_int = COLUMNS as c_int;

#[repr(C)]
struct Cursor {
    /// First, so that SQLite's `sqlite3_vtab_cursor*` is this cursor.
    base: ffi::sqlite3_vtab_cursor,
    rows: Option<Arc<Rows>>,
    row: usize,
}

unsafe extern "C" fn connect(
    db: *mut ffi::sqlite3,
    _aux: *mut c_void,
    _argc: c_int,
    _argv: *const *const c_char,
    vtab: *mut *mut ffi::sqlite3_vtab,
    _error: *mut *mut c_char,
) -> c_int {
    const SCHEMA: &CStr = c"CREATE TABLE x(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, rows HIDDEN)";
    // SAFETY: SQLite passes its connection and where to put the table.
    unsafe {
        let rc = ffi::sqlite3_declare_vtab(db, SCHEMA.as_ptr());
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        // SQLite fills the base's fields; zeroed is its documented initial state.
        *vtab = Box::into_raw(Box::new(std::mem::zeroed::<ffi::sqlite3_vtab>()));
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn disconnect(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    // SAFETY: `vtab` is the box `connect` made, released once.
    drop(unsafe { Box::from_raw(vtab) });
    ffi::SQLITE_OK
}

/// The only plan: `rows = ?` hands the token to `filter`. Without it there is no
/// plan (a bare `SELECT * FROM mailroom_rows` is an error).
unsafe extern "C" fn best_index(
    _vtab: *mut ffi::sqlite3_vtab,
    info: *mut ffi::sqlite3_index_info,
) -> c_int {
    // SAFETY: SQLite passes `nConstraint` constraints and as many usages.
    unsafe {
        let info = &mut *info;
        let n = usize::try_from(info.nConstraint).unwrap_or(0);
        for i in 0..n {
            let c = &*info.aConstraint.add(i);
            if c.iColumn == HIDDEN && c.op == ffi::SQLITE_INDEX_CONSTRAINT_EQ as u8 {
                if c.usable == 0 {
                    return ffi::SQLITE_CONSTRAINT;
                }
                let usage = &mut *info.aConstraintUsage.add(i);
                usage.argvIndex = 1;
                usage.omit = 1;
                info.estimatedCost = 1.0;
                info.estimatedRows = crate::bulk::SQLITE_ROWS_PER_STATEMENT as i64;
                return ffi::SQLITE_OK;
            }
        }
    }
    ffi::SQLITE_CONSTRAINT
}

unsafe extern "C" fn open(
    _vtab: *mut ffi::sqlite3_vtab,
    cursor: *mut *mut ffi::sqlite3_vtab_cursor,
) -> c_int {
    let new = Box::new(Cursor {
        // SAFETY: SQLite fills the base; zeroed is its documented initial state.
        base: unsafe { std::mem::zeroed() },
        rows: None,
        row: 0,
    });
    // SAFETY: SQLite passes where to put the cursor.
    unsafe { *cursor = Box::into_raw(new).cast() };
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: `cursor` is the box `open` made, released once.
    drop(unsafe { Box::from_raw(cursor.cast::<Cursor>()) });
    ffi::SQLITE_OK
}

unsafe extern "C" fn filter(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    _index: c_int,
    _index_str: *const c_char,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) -> c_int {
    // SAFETY: `cursor` is one of ours; `argv` holds `argc` values.
    unsafe {
        let cursor = &mut *cursor.cast::<Cursor>();
        let token = if argc == 1 {
            ffi::sqlite3_value_int64(*argv)
        } else {
            0
        };
        cursor.row = 0;
        cursor.rows = registry().get(&token).cloned();
        if cursor.rows.is_none() {
            let vtab = &mut *cursor.base.pVtab;
            ffi::sqlite3_free(vtab.zErrMsg.cast());
            vtab.zErrMsg = ffi::sqlite3_mprintf(
                c"%s: no rows under token %lld".as_ptr(),
                C_NAME.as_ptr(),
                token,
            );
            return ffi::SQLITE_ERROR;
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn next(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: `cursor` is one of ours.
    unsafe { (*cursor.cast::<Cursor>()).row += 1 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn eof(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: `cursor` is one of ours.
    let cursor = unsafe { &*cursor.cast::<Cursor>() };
    c_int::from(cursor.rows.as_ref().is_none_or(|r| cursor.row >= r.len()))
}

unsafe extern "C" fn column(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    context: *mut ffi::sqlite3_context,
    i: c_int,
) -> c_int {
    // SAFETY: `cursor` is one of ours. A text is handed over as static: it lives in the
    // rows the cursor holds until `close`, after SQLite's last use of the value.
    unsafe {
        let cursor = &*cursor.cast::<Cursor>();
        let Some(rows) = cursor.rows.as_ref() else {
            ffi::sqlite3_result_null(context);
            return ffi::SQLITE_OK;
        };
        match rows.cell(cursor.row, usize::try_from(i).unwrap_or(usize::MAX)) {
            Cell::Null => ffi::sqlite3_result_null(context),
            Cell::Int(v) => ffi::sqlite3_result_int64(context, v),
            Cell::Text { start, len } => ffi::sqlite3_result_text64(
                context,
                rows.text.as_ptr().add(start).cast(),
                len as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            ),
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn rowid(cursor: *mut ffi::sqlite3_vtab_cursor, rowid: *mut i64) -> c_int {
    // SAFETY: `cursor` is one of ours; SQLite passes where to put the id.
    unsafe { *rowid = (*cursor.cast::<Cursor>()).row as i64 };
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

    use super::*;

    async fn query(
        store: &crate::Store,
        sql: &str,
        param: sea_orm::Value,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        store
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                [param],
            ))
            .await
    }

    /// SQLite reads every field as it was pushed: its type, its value (texts with a NUL,
    /// non-ASCII and a megabyte long included), rows in order, and NULL past the
    /// row's columns.
    #[tokio::test]
    async fn sqlite_reads_the_rows_as_pushed() {
        let store = crate::Store::connect("sqlite::memory:").await.unwrap();
        let texts = [
            String::new(),
            "nul \u{0} inside".to_owned(),
            "\"quoted\" \\ \u{1f} \u{2028} Zürich 😀".to_owned(),
            "é".repeat(1 << 19),
        ];
        let mut rows = Rows::with_capacity(3, texts.len(), 0);
        for (i, text) in texts.iter().enumerate() {
            rows.push(Field::Text(text.as_str().into()));
            rows.push(match i {
                0 => Field::Int(i64::MIN),
                1 => Field::Int(i64::MAX),
                2 => Field::Bool(true),
                _ => Field::Bool(false),
            });
            rows.push(Field::Null);
        }
        let registered = Registered::new(rows);
        let got = query(
            &store,
            "SELECT c0, typeof(c0) AS t0, c1, typeof(c1) AS t1, typeof(c2) AS t2, \
             typeof(c3) AS t3, typeof(c15) AS t15 FROM mailroom_rows(?)",
            registered.param(),
        )
        .await
        .unwrap();
        assert_eq!(got.len(), texts.len());
        for (i, (row, text)) in got.iter().zip(&texts).enumerate() {
            assert_eq!(&row.try_get::<String>("", "c0").unwrap(), text, "row {i}");
            assert_eq!(row.try_get::<String>("", "t0").unwrap(), "text");
            assert_eq!(row.try_get::<String>("", "t1").unwrap(), "integer");
            let int = [i64::MIN, i64::MAX, 1, 0][i];
            assert_eq!(row.try_get::<i64>("", "c1").unwrap(), int, "row {i}");
            for column in ["t2", "t3", "t15"] {
                assert_eq!(row.try_get::<String>("", column).unwrap(), "null");
            }
        }
    }

    /// A token that names no rows (dropped, or never registered) is an error that
    /// says so, and so is the function without its argument: nothing is read.
    #[tokio::test]
    async fn rows_that_are_gone_are_an_error_not_a_read() {
        let store = crate::Store::connect("sqlite::memory:").await.unwrap();
        let mut rows = Rows::with_capacity(1, 1, 1);
        rows.push(Field::Text("x".into()));
        let registered = Registered::new(rows);
        let param = registered.param();
        let sql = "SELECT c0 FROM mailroom_rows(?)";
        assert_eq!(query(&store, sql, param.clone()).await.unwrap().len(), 1);
        drop(registered);
        let error = query(&store, sql, param).await.unwrap_err().to_string();
        assert!(
            error.contains("mailroom_rows: no rows under token"),
            "{error}"
        );
        let error = query(&store, "SELECT * FROM mailroom_rows", 0i64.into())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("no query solution"), "{error}");
    }
}
