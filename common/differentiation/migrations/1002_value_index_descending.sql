-- Listings by value read the best first: ORDER BY value_hundredths DESC, then
-- the entity's id. An ascending index cannot give that mixed order, so every
-- page sorted all the scored entities; this one reads a page's rows only.
-- (Sets staged later copy it: their indexes are built from the live table's,
-- with the value's descending even where an older binary's set lost it.)
ALTER TABLE {values}
  DROP KEY IF EXISTS {values}_value,
  ADD KEY {values}_value (value_hundredths DESC, {entity_id});
