-- Catalog search through an index, and a generation counter that tells when cached counts and
-- page positions are stale.

-- The folded title (search ranks title matches first); the application fills it, and folds
-- search_text again, for rows written before this migration (Store::fold_search_columns).
ALTER TABLE videos ADD COLUMN search_title TEXT NOT NULL DEFAULT '';

-- Substring search over search_text: a trigram index, kept in step by triggers. The text is
-- folded by the application (lower case, no accents), so the tokenizer folds nothing itself.
CREATE VIRTUAL TABLE videos_fts USING fts5 (
    search_text,
    content = 'videos',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO videos_fts (videos_fts) VALUES ('rebuild');
CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN
    INSERT INTO videos_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
END;
CREATE TRIGGER videos_fts_update AFTER UPDATE OF search_text ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    INSERT INTO videos_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- Moves on with every committed change to a column a list filters or orders by, in the same
-- transaction: a count or page position computed at generation g holds while it is still g.
CREATE TABLE catalog_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);
CREATE TRIGGER catalog_generation_insert AFTER INSERT ON videos BEGIN
    UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER catalog_generation_delete AFTER DELETE ON videos BEGIN
    UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER catalog_generation_update
AFTER UPDATE OF genre, language, uploaded_by, uploaded_at, updated_at, search_text, search_title
ON videos BEGIN
    UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
END;
