//! A log line that an outside cause could repeat without end (refused
//! signatures from an unauthenticated sender, a clock stepped back) is
//! written at most once per period; the ones held back are counted and the
//! next line that goes out says how many.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one line through per `every`, counting the rest.
pub(crate) struct Throttle {
    every: Duration,
    /// When a line last went out, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub(crate) const fn new(every: Duration) -> Self {
        Throttle {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may go out now,
    /// `None` (and the line counted) when one went out less than `every`
    /// ago.
    pub(crate) fn due(&self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0 {
            Some(at) if now.saturating_duration_since(at) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held = state.1;
                *state = (Some(now), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_rest_counted() {
        let throttle = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(throttle.due_at(start), Some(0));
        assert_eq!(throttle.due_at(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.due_at(start + Duration::from_secs(9)), None);
        // The period runs from the last line that went out.
        assert_eq!(throttle.due_at(start + Duration::from_secs(10)), Some(2));
        assert_eq!(throttle.due_at(start + Duration::from_secs(19)), None);
        assert_eq!(throttle.due_at(start + Duration::from_secs(21)), Some(1));
    }
}
