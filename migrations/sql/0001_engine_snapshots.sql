-- Engine snapshots: the serialised engine state and the last ENGINE stream sequence it covers.
-- Recovery loads the newest readable one and replays the stream from `last_seq + 1`.
CREATE TABLE engine_snapshots (
    id          BIGSERIAL PRIMARY KEY,
    stream      TEXT        NOT NULL,
    last_seq    BIGINT      NOT NULL,
    format      INTEGER     NOT NULL,
    state       BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX engine_snapshots_newest ON engine_snapshots (stream, last_seq DESC);
