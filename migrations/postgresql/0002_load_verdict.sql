-- codestore schema 2 in PostgreSQL's dialect: the twin of migrations/0002_load_verdict.sql.
ALTER TABLE blobs ADD COLUMN load_verdict BIGINT;
