-- codestore schema 6: module images stored as their chunks (docs/store.md, "Chunks").
-- A module image (an IFF file: "FOR1", size, "BEAM", then chunks) is kept as a layout, the
-- recipe that rebuilds the exact file (its header, each chunk's header and padding, the
-- small chunks themselves, any bytes after the last chunk), plus one row per larger chunk,
-- content-addressed by the SHA-256 of the chunk's data as it is in the image, so the
-- versions of a module share the chunks a build did not change.
--
-- blobs.layout 0: data is the whole file's zstd frame (every blob before schema 6, files
-- that are not module images, gzip-wrapped images until compact); 1: data is the recipe's
-- zstd frame, layout_size its size, and blob_chunks names its chunks in order. sha256 and
-- raw_size stay the whole file's, so nothing that reads a blob by its address changes.
-- Existing blobs are left as they are by this step (SQL cannot read IFF): they stay
-- readable, and `compact` converts them (docs/store.md).
ALTER TABLE blobs ADD COLUMN layout INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN layout_size INTEGER NOT NULL DEFAULT 0;

-- One row per distinct chunk data. kind is the chunk id ('Code', 'Dbgi'; bytes outside
-- printable ASCII written \xNN). data is one zstd frame with the content checksum of:
--   deflate 0: the chunk's data as in the image;
--   deflate > 0: the first `head` bytes as in the image, then what the zlib stream after them
--   inflates to (LitT after its size word, a term_to_binary(_, [compressed]) after its tag
--   and size: Dbgi, Docs). deflate is the zlib parameters that deflate it again to exactly
--   the bytes of the image (level + 1, memLevel << 8, strategy << 16), verified when stored.
-- raw_size is the chunk's size in the image, content_size the frame's content.
CREATE TABLE chunks (
  id             INTEGER PRIMARY KEY,
  sha256         BLOB NOT NULL UNIQUE,
  kind           TEXT NOT NULL,
  raw_size       INTEGER NOT NULL,
  content_size   INTEGER NOT NULL,
  deflate        INTEGER NOT NULL DEFAULT 0,
  head           INTEGER NOT NULL DEFAULT 0,
  stored_size    INTEGER NOT NULL,
  level          INTEGER NOT NULL,
  dictionary_id  INTEGER REFERENCES dictionaries (id),
  data           BLOB NOT NULL,
  frame_checksum BLOB
);

-- The chunks of a layout-1 blob, in the order the recipe takes them (seq from 0).
CREATE TABLE blob_chunks (
  blob_id  INTEGER NOT NULL REFERENCES blobs (id),
  seq      INTEGER NOT NULL,
  chunk_id INTEGER NOT NULL REFERENCES chunks (id),
  PRIMARY KEY (blob_id, seq)
);
CREATE INDEX blob_chunks_chunk ON blob_chunks (chunk_id);
