//! ListOffsets (filled in next).
