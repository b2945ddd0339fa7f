-- Purpose: move the conversations.id sequence past the ids synced from the bot, so a conversation created in Postgres never takes an id the bot already gave out
-- Ticket: N/A
-- Reversible: yes
-- Rollback: the down section resets the sequence to its start only while conversations is empty; with rows it leaves the sequence alone (a sequence ahead of every id is always safe)
-- Phase: post-load
--
-- Synced conversations keep the integer id the bot's persistence layer gave them (the
-- mapping's `int` key), so the SERIAL sequence never advanced while they were inserted.
-- The bot keeps minting ids until Postgres becomes the writer of conversations, so run
-- this statement again at that cutover. It is idempotent and only moves the sequence
-- forward: past both the largest id present and the sequence's own last value.

SELECT setval(
    pg_get_serial_sequence('conversations', 'id'),
    greatest(
        coalesce(max(id), 0),
        coalesce(pg_sequence_last_value(pg_get_serial_sequence('conversations', 'id')::regclass), 0)
    ) + 1,
    false
)
FROM conversations;

-- down
SELECT setval(pg_get_serial_sequence('conversations', 'id'), 1, false)
WHERE NOT EXISTS (SELECT 1 FROM conversations);
