//! Partition assignors run by the group leader.
