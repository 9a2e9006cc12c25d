import { addColumn, addIndex, idempotentSql, type Migration } from "./steps.js";

const now = "(cast(unixepoch('subsec') * 1000 as integer))";

/**
 * SQLite migrations: the same tables and columns as MySQL. DECIMAL(p,2)
 * columns hold integer hundredths (cents); timestamps integer milliseconds.
 */
export const sqliteMigrations: Migration[] = [
  {
    id: "0001_legacy_tables",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS memory_exchanges (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  seller_id INTEGER NOT NULL,
  buyer_id INTEGER NOT NULL,
  memory_type TEXT NOT NULL CHECK (memory_type IN ('kv_cache', 'reasoning_chain', 'long_term_memory')),
  kv_cache_data TEXT,
  w_matrix_version TEXT,
  source_model TEXT,
  target_model TEXT,
  context_length INTEGER,
  token_count INTEGER,
  price INTEGER NOT NULL,
  quality_score INTEGER,
  alignment_quality TEXT,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
  createdAt INTEGER NOT NULL DEFAULT ${now}
)`),
      idempotentSql("CREATE INDEX IF NOT EXISTS seller_idx ON memory_exchanges (seller_id)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS buyer_idx ON memory_exchanges (buyer_id)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS memory_type_idx ON memory_exchanges (memory_type)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS status_idx ON memory_exchanges (status)"),
      idempotentSql(`CREATE TABLE IF NOT EXISTS reasoning_chains (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  creator_id INTEGER NOT NULL,
  chain_name TEXT NOT NULL,
  description TEXT NOT NULL,
  category TEXT NOT NULL,
  input_example TEXT,
  output_example TEXT,
  kv_cache_snapshot TEXT,
  source_model TEXT NOT NULL,
  w_matrix_version TEXT,
  step_count INTEGER,
  avg_quality INTEGER DEFAULT 0,
  review_count INTEGER NOT NULL DEFAULT 0,
  price_per_use INTEGER NOT NULL,
  usage_count INTEGER NOT NULL DEFAULT 0,
  total_revenue INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive')),
  createdAt INTEGER NOT NULL DEFAULT ${now},
  updatedAt INTEGER NOT NULL DEFAULT ${now}
)`),
      idempotentSql("CREATE INDEX IF NOT EXISTS creator_idx ON reasoning_chains (creator_id)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS category_idx ON reasoning_chains (category)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS rc_status_idx ON reasoning_chains (status)"),
    ],
  },
  {
    id: "0002_trades_and_payload_refs",
    steps: [
      addColumn("memory_exchanges", "description", "TEXT"),
      addColumn("memory_exchanges", "listing_id", "INTEGER"),
      addColumn("memory_exchanges", "chain_id", "INTEGER"),
      addColumn("memory_exchanges", "payload_digest", "TEXT"),
      addColumn("memory_exchanges", "payload_size", "INTEGER"),
      addColumn("reasoning_chains", "payload_digest", "TEXT"),
      addColumn("reasoning_chains", "payload_size", "INTEGER"),
      addIndex("memory_exchanges", "mx_listing_buyer_uq", "CREATE UNIQUE INDEX mx_listing_buyer_uq ON memory_exchanges (listing_id, buyer_id)"),
      addIndex("memory_exchanges", "mx_status_created_idx", "CREATE INDEX mx_status_created_idx ON memory_exchanges (status, createdAt, id)"),
      addIndex("memory_exchanges", "mx_chain_idx", "CREATE INDEX mx_chain_idx ON memory_exchanges (chain_id)"),
      addIndex("reasoning_chains", "mx_chain_status_created_idx", "CREATE INDEX mx_chain_status_created_idx ON reasoning_chains (status, createdAt, id)"),
    ],
  },
  {
    id: "0003_api_keys_and_payload_store",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  prefix TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL DEFAULT ${now},
  last_used_at INTEGER,
  expires_at INTEGER,
  revoked_at INTEGER
)`),
      idempotentSql("CREATE UNIQUE INDEX IF NOT EXISTS mx_api_keys_hash_uq ON mx_api_keys (key_hash)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS mx_api_keys_user_idx ON mx_api_keys (user_id)"),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payloads (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  kind TEXT NOT NULL,
  tensors TEXT NOT NULL,
  created_at INTEGER NOT NULL DEFAULT ${now}
)`),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_chunks (
  digest TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (digest, seq)
)`),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_owners (
  digest TEXT NOT NULL,
  user_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL DEFAULT ${now},
  PRIMARY KEY (digest, user_id)
)`),
    ],
  },
  {
    id: "0004_idempotency_keys",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_idempotency_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  status_code INTEGER,
  content_type TEXT,
  chunk_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  locked_at INTEGER NOT NULL
)`),
      idempotentSql("CREATE UNIQUE INDEX IF NOT EXISTS mx_idempotency_key_uq ON mx_idempotency_keys (key_id, idempotency_key)"),
      idempotentSql("CREATE INDEX IF NOT EXISTS mx_idempotency_created_idx ON mx_idempotency_keys (created_at)"),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_idempotency_chunks (
  record_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (record_id, seq)
)`),
    ],
  },
  {
    id: "0005_payload_uploads",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_uploads (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL DEFAULT ${now}
)`),
      idempotentSql("CREATE INDEX IF NOT EXISTS mx_payload_uploads_created_idx ON mx_payload_uploads (created_at)"),
      addColumn("mx_payloads", "chunk_key", "TEXT"),
    ],
  },
  {
    id: "0006_alignment_matrices",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_alignment_matrices (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source_model TEXT NOT NULL,
  target_model TEXT NOT NULL,
  source_dim INTEGER NOT NULL,
  target_dim INTEGER NOT NULL,
  dtype TEXT NOT NULL,
  matrix_digest TEXT NOT NULL,
  version TEXT,
  description TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  publisher_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL DEFAULT ${now}
)`),
      idempotentSql(
        "CREATE INDEX IF NOT EXISTS mx_alignment_pair_idx ON mx_alignment_matrices (source_model, target_model, status, created_at, id)",
      ),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_aligned_payloads (
  source_digest TEXT NOT NULL,
  matrix_id INTEGER NOT NULL,
  aligned_digest TEXT,
  metrics TEXT NOT NULL,
  refusal TEXT,
  created_at INTEGER NOT NULL DEFAULT ${now},
  PRIMARY KEY (source_digest, matrix_id)
)`),
    ],
  },
  {
    // Browse pages: equality on the whole "for sale" condition, then newest first. The planner picks
    // it with or without statistics; without them SQLite preferred the unique (listing_id, buyer_id)
    // index, which every listing matches (NULL, 0), and sorted all listings on each page.
    id: "0007_for_sale_browse_index",
    steps: [
      addIndex(
        "memory_exchanges",
        "mx_for_sale_created_idx",
        "CREATE INDEX mx_for_sale_created_idx ON memory_exchanges (status, buyer_id, listing_id, chain_id, createdAt, id)",
      ),
    ],
  },
];
