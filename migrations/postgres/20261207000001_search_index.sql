-- Catalog search through an index, and a generation counter that tells when cached counts and
-- page positions are stale.

-- Trigram indexes for substring (LIKE '%…%') search; a trusted extension since PostgreSQL 13.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The folded title (search ranks title matches first); the application fills it, and folds
-- search_text again, for rows written before this migration (Store::fold_search_columns).
ALTER TABLE videos ADD COLUMN search_title TEXT NOT NULL DEFAULT '';

CREATE INDEX videos_search_trgm_idx ON videos USING gin (search_text gin_trgm_ops);

-- Moves on with every committed change to a column a list filters or orders by, in the same
-- transaction: a count or page position computed at generation g holds while it is still g.
CREATE TABLE catalog_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);
-- Once per transaction: readers see the new generation in the same snapshot as the rows, and
-- a transaction of many statements (an import) does not stack a row version per statement,
-- each of which the next update would walk past.
CREATE FUNCTION bump_catalog_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('videoflix.generation_bumped_in', true) IS DISTINCT FROM
       txid_current()::text THEN
        UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
        PERFORM set_config('videoflix.generation_bumped_in', txid_current()::text, true);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER catalog_generation_change
AFTER INSERT OR DELETE OR UPDATE OF genre, language, uploaded_by, uploaded_at, updated_at,
    search_text, search_title
ON videos FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
