import { addColumn, addIndex, idempotentSql, type Migration } from "./steps.js";

/** MySQL / MariaDB / TiDB migrations. Portable SQL only: no IF NOT EXISTS on columns, no RETURNING. */
export const mysqlMigrations: Migration[] = [
  {
    id: "0001_legacy_tables",
    steps: [
      // Exactly the main app's existing tables (reference/legacy-schema.sql).
      idempotentSql(`CREATE TABLE IF NOT EXISTS memory_exchanges (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  seller_id INT NOT NULL,
  buyer_id INT NOT NULL,
  memory_type ENUM('kv_cache', 'reasoning_chain', 'long_term_memory') NOT NULL,
  kv_cache_data TEXT,
  w_matrix_version VARCHAR(20),
  source_model VARCHAR(50),
  target_model VARCHAR(50),
  context_length INT,
  token_count INT,
  price DECIMAL(10, 2) NOT NULL,
  quality_score DECIMAL(3, 2),
  alignment_quality TEXT,
  status ENUM('pending', 'completed', 'failed') NOT NULL DEFAULT 'pending',
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  INDEX seller_idx (seller_id),
  INDEX buyer_idx (buyer_id),
  INDEX memory_type_idx (memory_type),
  INDEX status_idx (status)
)`),
      idempotentSql(`CREATE TABLE IF NOT EXISTS reasoning_chains (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  creator_id INT NOT NULL,
  chain_name VARCHAR(255) NOT NULL,
  description TEXT NOT NULL,
  category VARCHAR(100) NOT NULL,
  input_example TEXT,
  output_example TEXT,
  kv_cache_snapshot TEXT,
  source_model VARCHAR(50) NOT NULL,
  w_matrix_version VARCHAR(20),
  step_count INT,
  avg_quality DECIMAL(3, 2) DEFAULT 0.00,
  review_count INT NOT NULL DEFAULT 0,
  price_per_use DECIMAL(10, 2) NOT NULL,
  usage_count INT NOT NULL DEFAULT 0,
  total_revenue DECIMAL(12, 2) NOT NULL DEFAULT 0.00,
  status ENUM('draft', 'active', 'inactive') NOT NULL DEFAULT 'draft',
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  INDEX creator_idx (creator_id),
  INDEX category_idx (category),
  INDEX status_idx (status)
)`),
    ],
  },
  {
    id: "0002_trades_and_payload_refs",
    steps: [
      addColumn("memory_exchanges", "description", "TEXT NULL"),
      // A trade row points at the listing it bought (listing_id) or the chain it used (chain_id);
      // listings and the older code's rows leave both NULL.
      addColumn("memory_exchanges", "listing_id", "INT NULL"),
      addColumn("memory_exchanges", "chain_id", "INT NULL"),
      addColumn("memory_exchanges", "payload_digest", "CHAR(64) NULL"),
      addColumn("memory_exchanges", "payload_size", "BIGINT NULL"),
      addColumn("reasoning_chains", "payload_digest", "CHAR(64) NULL"),
      addColumn("reasoning_chains", "payload_size", "BIGINT NULL"),
      // At most one purchase per (listing, buyer); NULL listing_id rows are not constrained.
      addIndex("memory_exchanges", "mx_listing_buyer_uq", "UNIQUE INDEX mx_listing_buyer_uq (listing_id, buyer_id)"),
      addIndex("memory_exchanges", "mx_status_created_idx", "INDEX mx_status_created_idx (status, createdAt, id)"),
      addIndex("memory_exchanges", "mx_chain_idx", "INDEX mx_chain_idx (chain_id)"),
      addIndex("reasoning_chains", "mx_chain_status_created_idx", "INDEX mx_chain_status_created_idx (status, createdAt, id)"),
    ],
  },
  {
    id: "0003_api_keys_and_payload_store",
    steps: [
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_api_keys (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL,
  name VARCHAR(100) NOT NULL,
  key_hash CHAR(64) NOT NULL,
  prefix VARCHAR(16) NOT NULL,
  scopes VARCHAR(100) NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used_at TIMESTAMP NULL DEFAULT NULL,
  expires_at TIMESTAMP NULL DEFAULT NULL,
  revoked_at TIMESTAMP NULL DEFAULT NULL,
  UNIQUE INDEX mx_api_keys_hash_uq (key_hash),
  INDEX mx_api_keys_user_idx (user_id)
)`),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payloads (
  digest CHAR(64) NOT NULL PRIMARY KEY,
  size BIGINT NOT NULL,
  chunk_count INT NOT NULL,
  kind VARCHAR(20) NOT NULL,
  tensors TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)`),
      // Chunks of at most 1 MiB: every row fits TiDB's 6 MiB entry limit and MariaDB's default packet.
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_chunks (
  digest CHAR(64) NOT NULL,
  seq INT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  PRIMARY KEY (digest, seq)
)`),
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_owners (
  digest CHAR(64) NOT NULL,
  user_id INT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (digest, user_id)
)`),
    ],
  },
  {
    id: "0004_idempotency_keys",
    steps: [
      // One row per (API key, Idempotency-Key); the unique index decides which of two racing requests
      // executes. Times are epoch milliseconds: expiry (24 h) and the in-flight lease are compared in code.
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_idempotency_keys (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  key_id INT NOT NULL,
  idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request_hash CHAR(64) NOT NULL,
  state VARCHAR(10) NOT NULL,
  status_code SMALLINT NULL,
  content_type VARCHAR(200) NULL,
  chunk_count INT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  locked_at BIGINT NOT NULL,
  UNIQUE INDEX mx_idempotency_key_uq (key_id, idempotency_key),
  INDEX mx_idempotency_created_idx (created_at)
)`),
      // The first response's body (gzip), in chunks small enough for TiDB and the default packet size.
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_idempotency_chunks (
  record_id BIGINT NOT NULL,
  seq INT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  PRIMARY KEY (record_id, seq)
)`),
    ],
  },
  {
    id: "0005_payload_uploads",
    steps: [
      // A streamed upload writes its chunks under a temporary key listed here; a crash mid-upload
      // leaves a row whose chunks the next start purges.
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_payload_uploads (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id INT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  INDEX mx_payload_uploads_created_idx (created_at)
)`),
      // The key a payload's chunks are stored under: its digest (NULL) or the upload that wrote them,
      // so finishing an upload is one small row, not a rewrite of every chunk.
      addColumn("mx_payloads", "chunk_key", "VARCHAR(64) NULL"),
    ],
  },
  {
    id: "0006_alignment_matrices",
    steps: [
      // Alignment matrices W registered per (source_model -> target_model) pair; W itself is a
      // safetensors file in the payload store. Purchases apply the newest active one (created_at, id).
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_alignment_matrices (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source_model VARCHAR(50) NOT NULL,
  target_model VARCHAR(50) NOT NULL,
  source_dim INT NOT NULL,
  target_dim INT NOT NULL,
  dtype VARCHAR(10) NOT NULL,
  matrix_digest CHAR(64) NOT NULL,
  version VARCHAR(20) NULL,
  description TEXT NULL,
  status VARCHAR(10) NOT NULL DEFAULT 'active',
  publisher_id INT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  INDEX mx_alignment_pair_idx (source_model, target_model, status, created_at, id)
)`),
      // The aligned-result cache: (payload digest, matrix) -> the aligned payload's digest and metrics,
      // so a repeat purchase or use never recomputes.
      idempotentSql(`CREATE TABLE IF NOT EXISTS mx_aligned_payloads (
  source_digest CHAR(64) NOT NULL,
  matrix_id INT NOT NULL,
  aligned_digest CHAR(64) NULL,
  metrics TEXT NOT NULL,
  refusal TEXT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
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
        "INDEX mx_for_sale_created_idx (status, buyer_id, listing_id, chain_id, createdAt, id)",
      ),
    ],
  },
];
