//! How failed deliveries are retried.

use std::time::Duration;

/// Retries with exponential backoff, jitter and a cap.
///
/// Attempt `n` (from 1) that fails is retried after a delay drawn uniformly from
/// `[d/2, d]`, where `d = min(max_delay, initial_delay * 2^(n-1))`. After `max_attempts`
/// attempts, the delivery goes to the dead letters.
///
/// ```
/// use event_core::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .initial_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(2));
/// let third = policy.delay(3); // after the third failed attempt
/// assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 100 ms doubling up to 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries: the first failure dead-letters the delivery.
    pub fn never() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// How many attempts in all, at least 1.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay before the first retry (before jitter).
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The cap on any delay.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How many attempts in all.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The upper bound of the delay after failed attempt `attempt` (from 1), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The delay after failed attempt `attempt` (from 1): uniform in `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from(ceiling.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=spread))
    }
}
