//! The consumer's metrics without the `metrics` feature: the types the
//! consumer records through (see `record.rs` for what each does), with
//! nothing in them and every method empty, so that nothing of it is left
//! once compiled: no field takes space, no call takes time, and no
//! argument is computed (the callers pass what they have; the work, such
//! as the lag of every partition, is done inside the methods).

use std::collections::BTreeMap;

use krust_group::{GroupHandle, TopicPartition};

use crate::config::ConsumerConfig;
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::parts::PartState;
use crate::record::ConsumerRecord;

/// One consumer's handles: none.
#[derive(Debug)]
pub(crate) struct ConsumerMetrics;

impl ConsumerMetrics {
    #[inline(always)]
    pub(crate) fn new(_: &ConsumerConfig) -> Self {
        ConsumerMetrics
    }

    #[inline(always)]
    pub(crate) fn polled(&self) {}

    #[inline(always)]
    pub(crate) fn partition(&self, _: &TopicPartition) -> PartMetrics {
        PartMetrics
    }

    #[inline(always)]
    pub(crate) fn lag(&self, _: &BTreeMap<TopicPartition, PartState>, _: IsolationLevel) {}

    #[inline(always)]
    pub(crate) fn fetch(&self) -> FetchMetrics {
        FetchMetrics
    }

    #[inline(always)]
    pub(crate) fn commit(&self, _: usize) -> CommitMetrics {
        CommitMetrics
    }

    #[inline(always)]
    pub(crate) fn assigned(&self, _: usize) {}

    #[inline(always)]
    pub(crate) fn revoked(&self, _: usize) {}

    #[inline(always)]
    pub(crate) fn lost(&self, _: usize) {}

    #[inline(always)]
    pub(crate) fn watch_group(&self, _: &GroupHandle) {}
}

/// One partition's handles: none.
#[derive(Debug)]
pub(crate) struct PartMetrics;

impl PartMetrics {
    #[inline(always)]
    pub(crate) fn handed_out(&mut self, _: &[ConsumerRecord]) {}

    #[inline(always)]
    pub(crate) fn given_back(&mut self, _: usize) {}

    #[inline(always)]
    pub(crate) fn refilled(&mut self) {}
}

/// The fetcher's handles: none.
#[derive(Debug)]
pub(crate) struct FetchMetrics;

impl FetchMetrics {
    #[inline(always)]
    pub(crate) fn broker(&mut self, _: i32) -> FetchLatency {
        FetchLatency
    }
}

/// No time taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started;

/// A broker's fetch latency: not recorded.
#[derive(Debug)]
pub(crate) struct FetchLatency;

impl FetchLatency {
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        FetchLatency
    }

    #[inline(always)]
    pub(crate) fn start(&self) -> Started {
        Started
    }

    #[inline(always)]
    pub(crate) fn answered(&self, _: Started) {}
}

/// A commit's handles: none.
#[derive(Debug, Clone)]
pub(crate) struct CommitMetrics;

impl CommitMetrics {
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        CommitMetrics
    }

    #[inline(always)]
    pub(crate) fn start(&self) -> Started {
        Started
    }

    #[inline(always)]
    pub(crate) fn ended(&self, _: Started, _: &Result<(), ConsumerError>) {}

    #[inline(always)]
    pub(crate) fn failed(&self, _: &ConsumerError) {}
}
