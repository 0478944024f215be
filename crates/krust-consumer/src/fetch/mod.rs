//! Fetching records: fetch sessions (KIP-227) and decoding (filled in next).
