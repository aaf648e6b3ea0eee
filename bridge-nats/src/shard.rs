//! Which shard runs which subscription: a stable hash, the same in every
//! process, build and version.
//!
//! The key of a subscription is `endpoint name, 0x00, channel`; its 64-bit
//! FNV-1a hash ([`hash::fnv1a`], over the UTF-8 bytes) feeds Lamping and Veach's jump consistent hash ("A Fast,
//! Minimal Memory, Consistent Hash Algorithm", 2014), which gives the shard.
//! Neither depends on std's randomly seeded hasher, so every replica and
//! every restart agrees. Jump hashing moves only what it must when the
//! count changes: going from n to n + 1 shards moves about 1/(n + 1) of the
//! subscriptions, every one of them to the new shard, and none between old
//! shards.

use crate::config::Config;
use crate::hash;

/// Jump consistent hash: the bucket of `key` among `buckets` (at least 1).
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // (b + 1) * 2^31 / ((key >> 33) + 1), in floating point as in the paper.
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // In 0..buckets, so it fits.
    b as u32
}

/// The shard of `channel` of `endpoint` among `shards`.
pub fn shard_of(endpoint: &str, channel: &str, shards: u32) -> u32 {
    jump(hash::fnv1a(&[endpoint.as_bytes(), &[0], channel.as_bytes()]), shards)
}

/// One endpoint's part of this shard: its channels, spread over its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The endpoint's index in the configuration.
    pub endpoint: usize,
    /// For each connection of the endpoint's pool, the channels it subscribes to
    /// (round robin over the shard's channels, in the file's order; duplicates dropped).
    pub per_connection: Vec<Vec<String>>,
}

impl Assignment {
    /// Every channel of this endpoint in this shard.
    pub fn channels(&self) -> impl Iterator<Item = &String> {
        self.per_connection.iter().flatten()
    }
}

/// What shard `config.bridge.shard` of `config.bridge.shards` runs: one
/// assignment per endpoint that has channels in it.
pub fn assign(config: &Config) -> Vec<Assignment> {
    let (k, n) = (config.bridge.shard, config.bridge.shards);
    let mut out = Vec::new();
    for (index, endpoint) in config.endpoints.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        let mine: Vec<&String> = endpoint
            .channels
            .iter()
            .filter(|c| seen.insert(c.as_str()) && shard_of(&endpoint.name, c, n) == k)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let slots = endpoint.connections.min(mine.len());
        let mut per_connection = vec![Vec::new(); slots];
        for (i, channel) in mine.into_iter().enumerate() {
            per_connection[i % slots].push(channel.clone());
        }
        out.push(Assignment { endpoint: index, per_connection });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_stable_across_processes_and_versions() {
        // Fixed values: a change here re-shards every deployment, so it must be deliberate.
        let got: Vec<u32> = ["trades.BTC", "trades.ETH", "book.BTC.100ms", "ticker.SOL"]
            .iter()
            .map(|c| shard_of("deribit", c, 8))
            .collect();
        assert_eq!(got, GOLDEN);
        assert_eq!(jump(0, 1), 0);
        assert_eq!(jump(u64::MAX, 1), 0);
    }
    const GOLDEN: [u32; 4] = [1, 4, 1, 7];

    #[test]
    fn every_shard_gets_a_fair_part() {
        let n = 8u32;
        let mut counts = vec![0u32; n as usize];
        for i in 0..8000 {
            counts[shard_of("e", &format!("chan.{i}"), n) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn growing_the_count_moves_only_to_the_new_shard() {
        for n in 1..12u32 {
            let mut moved = 0;
            for i in 0..2000 {
                let c = format!("chan.{i}");
                let (before, after) = (shard_of("e", &c, n), shard_of("e", &c, n + 1));
                if before != after {
                    assert_eq!(after, n, "a channel moved between old shards");
                    moved += 1;
                }
            }
            // About 2000 / (n + 1); a wide margin keeps the test about the property, not the noise.
            let expected = 2000 / (n + 1);
            assert!(moved > expected / 2 && moved < expected * 2, "n={n}: {moved} moved, about {expected} expected");
        }
    }
}
