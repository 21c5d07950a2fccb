//! Choosing a deployment for each attempt: weighted power-of-two-choices over in-flight
//! calls and a latency average, a circuit breaker per deployment, and jittered backoff
//! between attempts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::RoutingConfig;

/// Weight of the newest sample in the latency average.
const EWMA_ALPHA: f64 = 0.2;

/// Latency assumed for a deployment that has not answered yet, in microseconds: low, so a
/// new deployment gets traffic and a measurement.
const UNMEASURED_US: f64 = 1_000.0;

/// A uniformly random `u64` (std's hasher keys are random per `RandomState`).
fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// A random number in `[0, 1)`.
fn unit() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Live state of one deployment.
#[derive(Debug)]
pub struct Health {
    in_flight: AtomicU64,
    /// Latency to the response headers, microseconds, as `f64` bits.
    ewma_us: AtomicU64,
    breaker: Mutex<Breaker>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            in_flight: AtomicU64::new(0),
            ewma_us: AtomicU64::new(0f64.to_bits()),
            breaker: Mutex::new(Breaker::Closed { failures: 0 }),
        }
    }
}

/// Counts a call in flight until dropped (a stream keeps it until its end).
#[derive(Debug)]
pub struct InFlight(Arc<Health>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Health {
    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the breaker would let a call through now (without claiming a probe).
    pub fn available(&self, now: Instant) -> bool {
        match *self.breaker() {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } => now >= until,
            Breaker::HalfOpen { probing } => !probing,
        }
    }

    /// Lets a call through, claiming the single probe of a half-open breaker.
    pub fn admit(&self, now: Instant) -> bool {
        let mut breaker = self.breaker();
        match *breaker {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } if now >= until => {
                *breaker = Breaker::HalfOpen { probing: true };
                true
            }
            Breaker::Open { .. } | Breaker::HalfOpen { probing: true } => false,
            Breaker::HalfOpen { probing: false } => {
                *breaker = Breaker::HalfOpen { probing: true };
                true
            }
        }
    }

    /// When an open breaker will let a probe through.
    pub fn open_until(&self) -> Option<Instant> {
        match *self.breaker() {
            Breaker::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Records the outcome of a call let through by [`Health::admit`].
    pub fn record(&self, ok: bool, latency: Duration, config: &RoutingConfig, now: Instant) {
        let mut breaker = self.breaker();
        if ok {
            *breaker = Breaker::Closed { failures: 0 };
            let sample = latency.as_secs_f64() * 1e6;
            let old = f64::from_bits(self.ewma_us.load(Ordering::Relaxed));
            let new = if old == 0.0 {
                sample
            } else {
                old + EWMA_ALPHA * (sample - old)
            };
            self.ewma_us.store(new.to_bits(), Ordering::Relaxed);
            return;
        }
        let open = Breaker::Open {
            until: now + Duration::from_millis(config.breaker_open_ms),
        };
        *breaker = match *breaker {
            Breaker::Closed { failures } if failures + 1 < config.breaker_failures => {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            _ => open,
        };
    }

    /// Marks a call as started; it counts until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Whether the breaker is closed (for status and tests).
    pub fn is_closed(&self) -> bool {
        matches!(*self.breaker(), Breaker::Closed { .. })
    }

    fn score(&self) -> f64 {
        let in_flight = self.in_flight.load(Ordering::Relaxed) as f64;
        let ewma = f64::from_bits(self.ewma_us.load(Ordering::Relaxed));
        let latency = if ewma == 0.0 { UNMEASURED_US } else { ewma };
        (in_flight + 1.0) * latency
    }
}

/// Picks among `candidates` (index, weight, health): two drawn at random in proportion to
/// their weights, the one with fewer calls in flight per latency wins. `None` when empty.
pub fn power_of_two(candidates: &[(usize, u32, &Health)]) -> Option<usize> {
    let total: u64 = candidates.iter().map(|(_, w, _)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let draw = || {
        let mut point = random() % total;
        for (index, weight, health) in candidates {
            let weight = u64::from(*weight);
            if point < weight {
                return Some((*index, *health));
            }
            point -= weight;
        }
        None
    };
    let (a, health_a) = draw()?;
    let Some((b, health_b)) = draw() else {
        return Some(a);
    };
    if a == b {
        return Some(a);
    }
    Some(if health_b.score() < health_a.score() {
        b
    } else {
        a
    })
}

/// The pause before attempt `attempt` (1 for the first retry): exponential from
/// `backoff_ms`, capped, with full jitter between half and all of it.
pub fn backoff(config: &RoutingConfig, attempt: u32) -> Duration {
    let exponential = config
        .backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(16))
        .min(config.max_backoff_ms);
    let jittered = exponential as f64 * (0.5 + 0.5 * unit());
    Duration::from_micros((jittered * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RoutingConfig {
        RoutingConfig {
            breaker_failures: 3,
            breaker_open_ms: 1_000,
            ..RoutingConfig::default()
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_once() {
        let health = Health::default();
        let config = config();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        health.record(false, ms(1), &config, t0);
        health.record(true, ms(1), &config, t0);
        // A success in between resets the count.
        for _ in 0..2 {
            health.record(false, ms(1), &config, t0);
        }
        assert!(health.is_closed() && health.admit(t0));
        health.record(false, ms(1), &config, t0);
        assert!(!health.is_closed());
        assert!(!health.available(t0 + ms(999)) && !health.admit(t0 + ms(999)));
        assert_eq!(health.open_until(), Some(t0 + ms(1_000)));
        // After the open period: exactly one probe.
        let later = t0 + ms(1_000);
        assert!(health.available(later));
        assert!(health.admit(later));
        assert!(!health.available(later) && !health.admit(later));
        // A failed probe opens it again; a successful one closes it.
        health.record(false, ms(1), &config, later);
        assert!(!health.admit(later + ms(10)));
        let again = later + ms(1_000);
        assert!(health.admit(again));
        health.record(true, ms(1), &config, again);
        assert!(health.is_closed() && health.admit(again));
    }

    #[test]
    fn power_of_two_prefers_the_less_loaded_and_follows_weights() {
        let busy = Arc::new(Health::default());
        let idle = Health::default();
        let _calls: Vec<_> = (0..10).map(|_| busy.start()).collect();
        let candidates = [(0, 1, &*busy), (1, 1, &idle)];
        let picks: Vec<usize> = (0..400).filter_map(|_| power_of_two(&candidates)).collect();
        let idle_share = picks.iter().filter(|i| **i == 1).count();
        // Busy wins only when both draws hit it (about a quarter of the time).
        assert!(idle_share > 240, "{idle_share}");
        drop(_calls);
        assert_eq!(busy.in_flight.load(Ordering::Relaxed), 0);

        let a = Health::default();
        let b = Health::default();
        let weighted = [(0, 9, &a), (1, 1, &b)];
        // Equal load and latency: the first draw wins ties, so the share follows the weights.
        let heavy = (0..1000)
            .filter(|_| power_of_two(&weighted) == Some(0))
            .count();
        assert!(heavy > 800, "{heavy}");
        assert_eq!(power_of_two(&[]), None);
    }

    #[test]
    fn latency_is_averaged_and_slower_deployments_lose() {
        let config = config();
        let fast = Health::default();
        let slow = Health::default();
        let now = Instant::now();
        fast.record(true, Duration::from_millis(5), &config, now);
        slow.record(true, Duration::from_millis(500), &config, now);
        let candidates = [(0, 1, &slow), (1, 1, &fast)];
        let fast_share = (0..400)
            .filter(|_| power_of_two(&candidates) == Some(1))
            .count();
        assert!(fast_share > 240, "{fast_share}");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let config = RoutingConfig {
            backoff_ms: 100,
            max_backoff_ms: 300,
            ..RoutingConfig::default()
        };
        for _ in 0..50 {
            let first = backoff(&config, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&config, 3);
            assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
            assert!(backoff(&config, 40) <= Duration::from_millis(300));
        }
    }
}
