-- codestore schema 10 in PostgreSQL's dialect: the twin of migrations/0010_external_storage.sql
-- (which, on SQLite, does nothing). A blob's or a chunk's data is a zstd frame: TOAST's default
-- for bytea (EXTENDED) tries pglz on every row over ~2 kB before moving the value out of line,
-- and a zstd frame gives it nothing to keep (pglz gives up when its first kilobyte matches
-- nothing), so every such write paid for a compression attempt thrown away. EXTERNAL moves the
-- value out of line uncompressed (and a substring of one is read without the whole). Rows
-- written before keep their form until rewritten.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
