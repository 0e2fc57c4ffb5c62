CREATE TABLE "{table}" (
                id TEXT PRIMARY KEY NOT NULL,
                filename TEXT NOT NULL,
                local_uri TEXT,
                timestamp INTEGER NOT NULL,
                size INTEGER,
                media_type TEXT,
                state INTEGER NOT NULL,
                has_synced INTEGER NOT NULL DEFAULT 0,
                meta_data TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER,
                last_error TEXT,
                checksum TEXT,
                version INTEGER NOT NULL DEFAULT 1,
                failed_state INTEGER
            );
            CREATE INDEX "{table}_state" ON "{table}" (state);
            CREATE INDEX "{table}_state_timestamp" ON "{table}" (state, timestamp);