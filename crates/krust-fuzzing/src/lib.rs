//! Fuzz target bodies for the krust codec.
#![deny(missing_docs)]
